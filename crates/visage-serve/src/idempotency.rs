//! `Idempotency-Key` for enrolments: a client that got no answer (a 503
//! after the request timeout, a dropped connection) can send the same
//! request again with the same key and is answered with the first
//! outcome instead of enrolling the face a second time.
//!
//! Why the service needs this at all: the request timeout answers 503 but
//! cannot take back a store write already under way (it runs to
//! completion on a blocking thread), so without a key a retry after a
//! timeout may add the same photo twice.
//!
//! The rules follow the IETF `Idempotency-Key` header draft:
//! - the key is scoped to the API key that sent it (two clients choosing
//!   the same UUID do not see each other's answers);
//! - same key, same request (a SHA-256 over the name, the metadata and
//!   the photo bytes) → the first answer, marked `Idempotent-Replayed: true`;
//!   a retry that arrives while the first is still running waits for it;
//! - same key, another request → 422;
//! - an attempt that wrote nothing (refused before the store, or the store
//!   failed) is forgotten, so its retry runs afresh.
//!
//! The table lives in the service's memory: it is bounded (the oldest
//! answers are forgotten first) and does not survive a restart. The store
//! records the key too (`GalleryStore::enrol_idempotent`, in the
//! enrolment's own transaction), so a retry after a restart is not
//! enrolled twice either: it is answered from what the store recorded,
//! compared by the face's embedding rather than the photo's bytes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::watch;

/// The answer an enrolment gave, kept to be given again.
#[derive(Clone, Debug)]
pub struct StoredAnswer {
    /// 201 (identity created), 200 (face added) or 422 (refused by the quality policy).
    pub status: StatusCode,
    /// The JSON body sent with it.
    pub body: serde_json::Value,
}

struct Entry {
    fingerprint: [u8; 32],
    /// `None` while the first attempt runs.
    answer: watch::Receiver<Option<StoredAnswer>>,
    /// Which claim made the entry (a forgotten attempt removes only its own).
    generation: u64,
    created: Instant,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// Keys in the order they were claimed, for eviction.
    order: VecDeque<(String, u64)>,
    next_generation: u64,
}

/// The keyed enrolments the service remembers, per API key: beyond
/// `capacity` keys the oldest answered ones are forgotten (running ones
/// never), and an answered key is free again `ttl` after it was first claimed.
pub struct IdempotencyTable {
    table: Arc<Mutex<Table>>,
    capacity: usize,
    ttl: Duration,
}

/// What to do with a keyed request.
pub enum Claim {
    /// First time: run it, then [`Ticket::finish`] with its answer.
    Run(Ticket),
    /// Answered before: give this again.
    Replay(StoredAnswer),
    /// Another attempt is running: wait for its answer (`Err`: it wrote
    /// nothing and was forgotten; claim again).
    Wait(watch::Receiver<Option<StoredAnswer>>),
    /// The key was used for another request.
    Mismatch,
}

/// The right to run a keyed request. Dropped without [`Ticket::finish`]
/// (the request failed or was cancelled before writing), the key is
/// forgotten and waiting retries claim it again.
pub struct Ticket {
    table: Arc<Mutex<Table>>,
    id: String,
    generation: u64,
    sender: Option<watch::Sender<Option<StoredAnswer>>>,
}

impl Ticket {
    /// Records the answer and gives it to every waiting retry.
    pub fn finish(mut self, answer: StoredAnswer) {
        if let Some(sender) = self.sender.take() {
            // The entry keeps a receiver, so the value stays readable after this sender is gone.
            let _ = sender.send(Some(answer));
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.sender.is_some() {
            let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
            if table.entries.get(&self.id).is_some_and(|e| e.generation == self.generation) {
                table.entries.remove(&self.id);
            }
            // Dropping the sender wakes the waiters with `Err`.
        }
    }
}

impl IdempotencyTable {
    /// An empty table for about `capacity` keys (0 is taken as 1), each
    /// remembered for `ttl` ([`crate::ServeOptions::new`]: 10 000 keys, 24 h).
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self { table: Arc::new(Mutex::new(Table::default())), capacity: capacity.max(1), ttl }
    }

    /// Number of keys remembered (answered or running).
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).entries.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks up `key` as sent by the holder of `scope` (the API key's id)
    /// for a request whose content hashes to `fingerprint`.
    pub fn claim(&self, scope: &str, key: &str, fingerprint: [u8; 32]) -> Claim {
        let id = format!("{scope}\u{0}{key}");
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = table.entries.get(&id) {
            let answer = entry.answer.borrow().clone();
            let expired = answer.is_some() && entry.created.elapsed() > self.ttl;
            if !expired {
                if entry.fingerprint != fingerprint {
                    return Claim::Mismatch;
                }
                return match answer {
                    Some(answer) => Claim::Replay(answer),
                    None => Claim::Wait(entry.answer.clone()),
                };
            }
            table.entries.remove(&id);
        }
        self.evict(&mut table);
        let generation = table.next_generation;
        table.next_generation += 1;
        let (sender, answer) = watch::channel(None);
        table.entries.insert(id.clone(), Entry { fingerprint, answer, generation, created: Instant::now() });
        table.order.push_back((id.clone(), generation));
        Claim::Run(Ticket { table: self.table.clone(), id, generation, sender: Some(sender) })
    }

    /// Makes room for one more key: drops stale order records, then the
    /// oldest answered keys until below capacity. Running attempts are never
    /// dropped (they are bounded by the requests in flight).
    fn evict(&self, table: &mut Table) {
        let mut budget = table.order.len();
        while table.entries.len() >= self.capacity && budget > 0 {
            budget -= 1;
            let Some((id, generation)) = table.order.pop_front() else { break };
            let running = match table.entries.get(&id) {
                Some(entry) if entry.generation == generation => entry.answer.borrow().is_none(),
                _ => continue, // forgotten or reclaimed since: a stale record
            };
            if running {
                table.order.push_back((id, generation));
            } else {
                table.entries.remove(&id);
            }
        }
        // Stale records of forgotten attempts must not pile up either.
        if table.order.len() > 2 * self.capacity {
            let entries = &table.entries;
            table.order.retain(|(id, generation)| entries.get(id).is_some_and(|e| e.generation == *generation));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> StoredAnswer {
        StoredAnswer { status: StatusCode::from_u16(status).unwrap(), body: serde_json::json!({ "status": status }) }
    }

    #[test]
    fn a_key_replays_its_first_answer_and_refuses_another_request() {
        let table = IdempotencyTable::new(3, Duration::from_secs(60));
        let Claim::Run(ticket) = table.claim("writer", "k1", [1; 32]) else { panic!("first claim runs") };
        // A retry while the first runs waits; another client's same key is its own.
        let Claim::Wait(mut waiting) = table.claim("writer", "k1", [1; 32]) else { panic!("a retry waits") };
        assert!(matches!(table.claim("other", "k1", [2; 32]), Claim::Run(_)));
        ticket.finish(answer(201));
        assert_eq!(waiting.borrow_and_update().as_ref().map(|a| a.status.as_u16()), Some(201));
        match table.claim("writer", "k1", [1; 32]) {
            Claim::Replay(a) => assert_eq!((a.status.as_u16(), a.body["status"].as_u64()), (201, Some(201))),
            _ => panic!("an answered key replays"),
        }
        assert!(matches!(table.claim("writer", "k1", [9; 32]), Claim::Mismatch));
    }

    #[test]
    fn an_attempt_that_wrote_nothing_is_forgotten() {
        let table = IdempotencyTable::new(3, Duration::from_secs(60));
        let Claim::Run(ticket) = table.claim("w", "k", [1; 32]) else { panic!() };
        let Claim::Wait(waiting) = table.claim("w", "k", [1; 32]) else { panic!() };
        drop(ticket);
        assert!(waiting.has_changed().is_err(), "the waiter learns the attempt is gone");
        assert!(table.is_empty());
        assert!(matches!(table.claim("w", "k", [1; 32]), Claim::Run(_)), "the retry runs afresh");
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest_answers() {
        let table = IdempotencyTable::new(3, Duration::from_secs(60));
        for i in 0..10 {
            let Claim::Run(ticket) = table.claim("w", &format!("k{i}"), [i as u8; 32]) else { panic!() };
            ticket.finish(answer(201));
            assert!(table.len() <= 3, "{} keys after {i}", table.len());
        }
        assert!(matches!(table.claim("w", "k9", [9; 32]), Claim::Replay(_)), "the newest is kept");
        assert!(matches!(table.claim("w", "k0", [0; 32]), Claim::Run(_)), "the oldest was forgotten");
        let expired = IdempotencyTable::new(3, Duration::ZERO);
        let Claim::Run(ticket) = expired.claim("w", "k", [1; 32]) else { panic!() };
        ticket.finish(answer(201));
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(expired.claim("w", "k", [2; 32]), Claim::Run(_)), "past its time a key is free again");
    }
}
