//! Opening or creating a gallery for one recogniser: the rules the command
//! line (`visage gallery …`) and the service (`visage serve`) share.
//!
//! A gallery holds the templates of one recogniser: opening it for another
//! is refused, since cosines between two models' embeddings mean nothing.
//! A new gallery takes its decision threshold from a cosine set by hand, else
//! from the recogniser config's `same_person_cosine`; with neither it cannot
//! be created.

use serde::Serialize;

use crate::config::{DecisionThreshold, GalleryConfig};
use crate::error::{GalleryError, Result};
use crate::model::{FaceSample, QualityPolicy, RefusedFace};
use crate::store::GalleryStore;
use crate::GalleryLocation;

/// What a gallery is opened or created for.
#[derive(Clone, Debug, PartialEq)]
pub struct GallerySetup {
    /// The recogniser's name (its config's `name`): the gallery's templates must come from it.
    pub recognizer: String,
    /// The recogniser config's `same_person_cosine`: the default decision threshold of a new gallery.
    pub same_person_cosine: Option<f32>,
    /// A decision threshold (cosine) set by hand, which wins over the recogniser's.
    pub manual_threshold: Option<f32>,
    /// The quality screen a new gallery applies to every enrolled face.
    pub quality: QualityPolicy,
}

impl GallerySetup {
    /// A setup for `recognizer` with its own threshold and the default quality screen.
    pub fn new(recognizer: impl Into<String>, same_person_cosine: Option<f32>) -> Self {
        Self { recognizer: recognizer.into(), same_person_cosine, manual_threshold: None, quality: QualityPolicy::default() }
    }

    /// The decision threshold a new gallery gets: the manual one, else the recogniser's.
    pub fn threshold(&self) -> Result<DecisionThreshold> {
        match (self.manual_threshold, self.same_person_cosine) {
            (Some(cosine), _) => DecisionThreshold::manual(cosine),
            (None, Some(cosine)) => DecisionThreshold::from_recognizer(&self.recognizer, cosine),
            (None, None) => Err(GalleryError::invalid(
                format!("recogniser `{}`", self.recognizer),
                "its config has no same_person_cosine, so a new gallery needs a threshold set by hand (`visage gallery enrol --threshold`)",
            )),
        }
    }

    /// Refuses a gallery whose templates come from another recogniser.
    pub fn check(&self, store: &dyn GalleryStore) -> Result<GalleryConfig> {
        let config = store.config()?;
        if config.recognizer != self.recognizer {
            return Err(GalleryError::WrongRecognizer { location: store.location(), holds: config.recognizer, asked: self.recognizer.clone() });
        }
        Ok(config)
    }
}

impl GalleryLocation {
    /// Opens the gallery here for `setup`'s recogniser; `None` when there is none yet.
    pub fn open_for(&self, setup: &GallerySetup, read_only: bool) -> Result<Option<Box<dyn GalleryStore>>> {
        if !self.exists()? {
            return Ok(None);
        }
        let store = self.open(read_only)?;
        setup.check(store.as_ref())?;
        Ok(Some(store))
    }

    /// Creates a gallery of `embedding_size`-dimensional templates for `setup`.
    pub fn create_for(&self, setup: &GallerySetup, embedding_size: usize) -> Result<Box<dyn GalleryStore>> {
        let config = GalleryConfig::new(embedding_size, setup.recognizer.clone(), setup.quality, setup.threshold()?);
        self.create(config)
    }

    /// Opens the gallery here for `setup`, or creates it when there is none
    /// and the embedding size is known (a recogniser that does not declare
    /// it needs a first enrolment, which tells it).
    pub fn open_or_create_for(&self, setup: &GallerySetup, embedding_size: Option<usize>) -> Result<Box<dyn GalleryStore>> {
        if let Some(store) = self.open_for(setup, false)? {
            return Ok(store);
        }
        let embedding_size = embedding_size.ok_or_else(|| {
            GalleryError::invalid(
                format!("recogniser `{}`", setup.recognizer),
                "it does not declare its embedding length: create the gallery with `visage gallery enrol` first",
            )
        })?;
        self.create_for(setup, embedding_size)
    }
}

/// What an enrolment of photos did: the JSON of `visage gallery enrol
/// --json`, which the Python package's `Gallery.enrol` returns too.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnrolReport {
    /// The identity's name.
    pub name: String,
    /// Whether the identity was created by this enrolment.
    pub created: bool,
    /// The faces that became templates, in the order given.
    pub enrolled: Vec<EnrolledFace>,
    /// Photos without a usable face and faces the quality screen refused,
    /// sorted by source.
    pub refused: Vec<RefusedFace>,
    /// The identity's templates after the enrolment (0 when nothing was written).
    pub templates: usize,
    /// Templates this enrolment added ([`crate::EnrolOutcome::accepted`]).
    #[serde(skip)]
    pub accepted: usize,
    /// Where the gallery is ([`GalleryStore::location`]); `None` when there
    /// was no gallery and no face to create one with, so nothing was written.
    #[serde(skip)]
    pub location: Option<String>,
}

/// One enrolled face of an [`EnrolReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnrolledFace {
    /// The face's [`FaceSample::source`].
    pub source: String,
    /// Its magnitude `‖x‖`.
    pub quality: f32,
}

impl GalleryLocation {
    /// Enrols one face per photo as `name`, the step after the face models
    /// ran: `existing` is what [`Self::open_for`] gave before they ran (so a
    /// wrong location or recogniser fails before any model does), `faces`
    /// the photos' faces and `refused` the photos that had none. Without a
    /// gallery the first face creates one of its embedding length for
    /// `setup`; without a face either, nothing is written and the report's
    /// `location` is `None`. The gallery's quality screen may refuse more
    /// faces; a report with nothing enrolled is not an error here (the
    /// caller says so, after showing the refusals).
    pub fn enrol_photos(
        &self,
        existing: Option<Box<dyn GalleryStore>>,
        setup: &GallerySetup,
        name: &str,
        metadata: Option<serde_json::Value>,
        faces: &[FaceSample],
        mut refused: Vec<RefusedFace>,
    ) -> Result<EnrolReport> {
        let store = match (existing, faces.first()) {
            (Some(store), _) => store,
            (None, Some(first)) => self.create_for(setup, first.embedding.len())?,
            (None, None) => {
                refused.sort_by(|a, b| a.source.cmp(&b.source));
                return Ok(EnrolReport {
                    name: name.to_string(),
                    created: false,
                    enrolled: Vec::new(),
                    refused,
                    templates: 0,
                    accepted: 0,
                    location: None,
                });
            }
        };
        let outcome = store.enrol(name, metadata, faces)?;
        refused.extend(outcome.refused.iter().cloned());
        refused.sort_by(|a, b| a.source.cmp(&b.source));
        let enrolled = faces
            .iter()
            .filter(|f| !outcome.refused.iter().any(|r| r.source == f.source))
            .map(|f| EnrolledFace { source: f.source.clone(), quality: f.magnitude })
            .collect();
        Ok(EnrolReport {
            name: name.to_string(),
            created: outcome.created,
            enrolled,
            refused,
            templates: outcome.identity.as_ref().map_or(0, |i| i.templates),
            accepted: outcome.accepted,
            location: Some(store.location()),
        })
    }
}
