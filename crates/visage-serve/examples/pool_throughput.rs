//! How to spend the cores on model workers: searches per second through the
//! whole service (HTTP, decode, detect, align, embed, search) for several
//! `workers × intra-op threads` layouts, 16 clients on loopback, layouts
//! alternating over rounds so a neighbour's load hits all of them alike.
//!
//! `cargo run --release -p visage-serve --example pool_throughput [SECONDS_PER_RUN] [ROUNDS]`

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use visage_gallery::GalleryLocation;
use visage_serve::{add_key, ModelSpec, Scope, ServeOptions, Service};

fn run(layout: (usize, usize), seconds: f64, photo: &[u8]) -> f64 {
    let dir = std::env::temp_dir().join(format!("visage-pool-bench-{}-{}x{}", std::process::id(), layout.0, layout.1));
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = ServeOptions::new(GalleryLocation::Directory(dir.join("gallery")));
    options.pool.workers = layout.0;
    options.pool.intra_threads = Some(layout.1);
    options.public_read = true;
    add_key(&options.keys_file, Scope::Write, "bench").unwrap();
    let models = ModelSpec::from_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
        "face_detection_yunet_2023mar",
        "arcface_mobileface_128d_paddle",
    )
    .unwrap();
    let service = Service::open(options, &models).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/v1/search", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(service.serve(listener, async move {
        let _ = stopped.await;
    }));
    let served = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
                while started.elapsed().as_secs_f64() < seconds {
                    match agent.post(&url).set("Content-Type", "image/jpeg").send_bytes(photo) {
                        Ok(_) => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)), // 503: the queue is full
                    }
                }
            });
        }
    });
    let rate = served.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    runtime.block_on(server).unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(6.0, |s| s.parse().unwrap());
    let rounds: usize = args.next().map_or(3, |s| s.parse().unwrap());
    let photo = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/photos/obama_and_biden.jpg")).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let layouts = [(1, cores), (cores, 1), (1, 1)];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
    for round in 0..rounds {
        for (i, &layout) in layouts.iter().enumerate() {
            let rate = run(layout, seconds, &photo);
            eprintln!("round {round}: {} workers × {} threads: {rate:.1} searches/s", layout.0, layout.1);
            rates[i].push(rate);
        }
    }
    println!("{cores} cores, 16 clients, {seconds} s per run, {rounds} rounds; obama_and_biden.jpg (640×457, 3 faces)");
    for (layout, mut rate) in layouts.iter().zip(rates) {
        rate.sort_by(f64::total_cmp);
        println!(
            "{} workers × {} intra-op threads: median {:.1} searches/s [{:.1}–{:.1}]",
            layout.0,
            layout.1,
            rate[rate.len() / 2],
            rate[0],
            rate[rate.len() - 1]
        );
    }
}
