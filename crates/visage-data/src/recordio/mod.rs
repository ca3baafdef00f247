//! insightface RecordIO (`train.rec` + `train.idx`): MXNet's framing
//! ([`frame`]), its image record header ([`irheader`]), a file with its key
//! table ([`file`](mod@file)), insightface's header/identity records ([`dataset`]) and
//! the atomic writer ([`writer`]).

pub mod dataset;
pub mod file;
pub mod frame;
pub mod irheader;
pub mod writer;

pub use dataset::{IdentityRange, LabelledRecord, RecordDataset};
pub use file::{index_path_for, IndexEntry, IndexSource, RecordFile};
pub use irheader::ImageRecord;
pub use writer::RecordWriter;
