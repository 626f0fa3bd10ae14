//! Wrong passwords slow down whoever sends them. Failures are counted per client network,
//! per account, and per (account, client) pair; past a few free tries each further try waits
//! twice as long as the one before (1 s, 2 s, 4 s … up to 15 min), answered 429 with
//! `Retry-After`. Checks in flight count as tries, so a burst of 500 at once gets the free
//! ones through and 429s for the rest, not 500 password hashes.
//!
//! An account under attack must not lock its owner out: the account's own count stops only
//! clients that have failed themselves. The owner, signing in from a client with no failures,
//! is let through whatever the account's count, and an attacker who moves to a fresh address
//! gets one try there before that address is failing too.
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Free failures for one account from one client.
    pub pair_free: u32,
    /// Free failures from one client network, over all accounts (a shared address, such as
    /// an office's, is many people mistyping).
    pub client_free: u32,
    /// Free failures for one account, over failing clients.
    pub account_free: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// A record with no failure for this long is forgotten.
    pub memory: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            pair_free: 5,
            client_free: 20,
            account_free: 10,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            memory: Duration::from_secs(30 * 60),
        }
    }
}

/// Records kept per map; beyond, the quietest go first.
const MAX_RECORDS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    pending: u32,
    last: Instant,
}

impl Record {
    fn new(now: Instant) -> Self {
        Record {
            failures: 0,
            pending: 0,
            last: now,
        }
    }

    /// How long until one more try may start, `None` when it may start now.
    fn wait(&self, free: u32, rules: &Rules, now: Instant) -> Option<Duration> {
        if self.failures < free {
            return (self.failures + self.pending >= free).then_some(rules.first_delay);
        }
        let doublings = (self.failures - free).min(20);
        let delay = (rules.first_delay * 2u32.pow(doublings)).min(rules.max_delay);
        let open_at = self.last + delay;
        if now < open_at {
            Some(open_at - now)
        } else if self.pending > 0 {
            Some(rules.first_delay)
        } else {
            None
        }
    }
}

struct Records<K> {
    map: HashMap<K, Record>,
}

impl<K: Hash + Eq + Clone> Records<K> {
    fn new() -> Self {
        Records {
            map: HashMap::new(),
        }
    }

    fn get(&self, key: &K) -> Option<&Record> {
        self.map.get(key)
    }

    fn entry(&mut self, key: &K, now: Instant, rules: &Rules) -> &mut Record {
        if self.map.len() >= MAX_RECORDS && !self.map.contains_key(key) {
            self.prune(now, rules);
        }
        self.map
            .entry(key.clone())
            .or_insert_with(|| Record::new(now))
    }

    fn prune(&mut self, now: Instant, rules: &Rules) {
        self.map
            .retain(|_, r| r.pending > 0 || now.duration_since(r.last) < rules.memory);
        if self.map.len() >= MAX_RECORDS {
            let mut lasts: Vec<Instant> = self.map.values().map(|r| r.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            self.map.retain(|_, r| r.pending > 0 || r.last > cut);
        }
    }

    fn release(&mut self, key: &K, failed: bool, now: Instant) {
        if let Some(r) = self.map.get_mut(key) {
            r.pending = r.pending.saturating_sub(1);
            if failed {
                r.failures += 1;
                r.last = now;
            }
        }
    }
}

struct State {
    pairs: Records<(String, IpAddr)>,
    clients: Records<IpAddr>,
    accounts: Records<String>,
}

pub struct Throttle {
    rules: Rules,
    state: Mutex<State>,
}

/// A password check admitted by the throttle; say how it went with [`Attempt::finish`]
/// (dropped unfinished, it counts as neither).
pub struct Attempt {
    throttle: Arc<Throttle>,
    account: String,
    client: IpAddr,
    counts_for_account: bool,
    done: bool,
}

impl Throttle {
    pub fn new(rules: Rules) -> Arc<Self> {
        Arc::new(Throttle {
            rules,
            state: Mutex::new(State {
                pairs: Records::new(),
                clients: Records::new(),
                accounts: Records::new(),
            }),
        })
    }

    /// Admits one password check for `account` (its normalised name) from `client` (its
    /// network), or says how long to wait.
    pub fn begin(
        self: &Arc<Self>,
        account: &str,
        client: IpAddr,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let rules = &self.rules;
        let account: String = account.chars().take(64).collect();
        let pair = (account.clone(), client);
        let mut s = self.state.lock().unwrap();
        let failing = s.clients.get(&client).is_some_and(|r| r.failures > 0)
            || s.pairs.get(&pair).is_some_and(|r| r.failures > 0);
        let waits = [
            s.pairs
                .get(&pair)
                .and_then(|r| r.wait(rules.pair_free, rules, now)),
            s.clients
                .get(&client)
                .and_then(|r| r.wait(rules.client_free, rules, now)),
            if failing {
                s.accounts
                    .get(&account)
                    .and_then(|r| r.wait(rules.account_free, rules, now))
            } else {
                None
            },
        ];
        if let Some(wait) = waits.into_iter().flatten().max() {
            return Err(wait);
        }
        s.pairs.entry(&pair, now, rules).pending += 1;
        s.clients.entry(&client, now, rules).pending += 1;
        if failing {
            s.accounts.entry(&account, now, rules).pending += 1;
        }
        Ok(Attempt {
            throttle: self.clone(),
            account,
            client,
            counts_for_account: failing,
            done: false,
        })
    }

    fn end(&self, a: &Attempt, outcome: Option<bool>, now: Instant) {
        let failed = outcome == Some(false);
        let mut s = self.state.lock().unwrap();
        let pair = (a.account.clone(), a.client);
        s.pairs.release(&pair, failed, now);
        s.clients.release(&a.client, failed, now);
        if a.counts_for_account {
            s.accounts.release(&a.account, failed, now);
        } else if failed {
            // A clean client's failure still counts for the account.
            let rules = self.rules;
            let r = s.accounts.entry(&a.account, now, &rules);
            r.failures += 1;
            r.last = now;
        }
        if outcome == Some(true) {
            // The right password from here: this pair starts afresh.
            s.pairs.map.remove(&pair);
        }
    }
}

impl Attempt {
    pub fn finish(mut self, succeeded: bool) {
        self.done = true;
        self.throttle.end(&self, Some(succeeded), Instant::now());
    }

    #[cfg(test)]
    fn finish_at(mut self, succeeded: bool, now: Instant) {
        self.done = true;
        self.throttle.end(&self, Some(succeeded), now);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.throttle.end(self, None, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Fails `n` tries at once-allowed moments, returning the time after the last.
    fn fail(t: &Arc<Throttle>, account: &str, client: IpAddr, n: u32, mut now: Instant) -> Instant {
        for _ in 0..n {
            let attempt = loop {
                match t.begin(account, client, now) {
                    Ok(a) => break a,
                    Err(wait) => now += wait,
                }
            };
            attempt.finish_at(false, now);
        }
        now
    }

    #[test]
    fn a_client_guessing_one_account_waits_longer_and_longer() {
        let t = Throttle::new(Rules::default());
        let now = Instant::now();
        let (attacker, owner) = (ip("192.0.2.1"), ip("198.51.100.2"));
        let now = fail(&t, "alice", attacker, 5, now);
        let first = t.begin("alice", attacker, now).map(drop).unwrap_err();
        assert_eq!(first, Duration::from_secs(1));
        let later = fail(&t, "alice", attacker, 5, now);
        let wait = t.begin("alice", attacker, later).map(drop).unwrap_err();
        assert!(wait >= Duration::from_secs(16), "{wait:?}");
        // The owner, from a client that has not been failing, gets in at once.
        let own = t
            .begin("alice", owner, later)
            .expect("the owner is not locked out");
        own.finish_at(true, later);
        // And another account from the attacker's address is not blocked by alice's pair.
        assert!(t.begin("bob", attacker, later).is_ok());
    }

    #[test]
    fn checks_in_flight_count_as_tries() {
        let t = Throttle::new(Rules::default());
        let now = Instant::now();
        let client = ip("192.0.2.1");
        let admitted: Vec<_> = (0..500)
            .filter_map(|_| t.begin("alice", client, now).ok())
            .collect();
        assert_eq!(admitted.len(), 5, "only the free tries run at once");
        drop(admitted);
        assert!(
            t.begin("alice", client, now).is_ok(),
            "unfinished tries are not failures"
        );
    }

    #[test]
    fn many_addresses_get_one_try_each_at_a_locked_account() {
        let t = Throttle::new(Rules::default());
        let mut now = Instant::now();
        // The account is past its free failures (from clients spread far apart).
        for i in 0..12 {
            now = fail(&t, "alice", ip(&format!("203.0.113.{i}")), 1, now);
        }
        let fresh = ip("198.51.100.77");
        t.begin("alice", fresh, now).unwrap().finish_at(false, now);
        assert!(
            t.begin("alice", fresh, now).map(drop).is_err(),
            "a failing client meets the account's count"
        );
        assert!(
            t.begin("alice", ip("198.51.100.78"), now).is_ok(),
            "a client that never failed still may try"
        );
    }

    #[test]
    fn one_client_across_many_accounts_is_limited_too() {
        let t = Throttle::new(Rules::default());
        let mut now = Instant::now();
        let client = ip("192.0.2.9");
        for i in 0..20 {
            now = fail(&t, &format!("user{i}"), client, 1, now);
        }
        assert!(t.begin("someone-else", client, now).map(drop).is_err());
    }

    #[test]
    fn records_are_forgotten_after_a_quiet_while_and_stay_bounded() {
        let t = Throttle::new(Rules::default());
        let now = Instant::now();
        for i in 0..(MAX_RECORDS as u32 + 10) {
            let client = IpAddr::V4(i.into());
            t.begin("alice", client, now).unwrap().finish_at(false, now);
        }
        let s = t.state.lock().unwrap();
        assert!(s.clients.map.len() <= MAX_RECORDS);
        assert!(s.pairs.map.len() <= MAX_RECORDS);
    }
}
