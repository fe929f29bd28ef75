//! Messages from their send to every recipient: API Gateway takes the frame (one request of
//! the account's throttle), route stores it and posts the first recipients itself, the rest
//! go through the broadcast queue (FIFO: one message group per conversation today, one per
//! shard as designed) to broadcast runs that read the subscriptions page by page and post
//! them with bounded concurrency. Every post is one more request of the same throttle.

use std::collections::{HashMap, VecDeque};

use crate::engine::{Queue, Rng, Time, MILLI, SECOND};
use crate::model::{
    Design, OnThrottle, Quotas, Times, BACKOFF_BASE, BACKOFF_CAP, CLIENT_BACKOFF_BASE,
    CLIENT_BACKOFF_CAP, JOB_ATTEMPTS, MAX_THROTTLED_TRIES, SDK_ATTEMPTS, SDK_BACKOFF_BASE,
    SDK_BACKOFF_CAP, SDK_RETRY_COST, SDK_RETRY_QUOTA,
};
use crate::quota::{Latencies, Pool, Series, TokenBucket};

/// What is sent: the recipients of each conversation, and when each message goes to which.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    pub conversations: Vec<u32>,
    /// (time, conversation), in time order.
    pub messages: Vec<(Time, u32)>,
}

/// What happened.
#[derive(Clone, Debug)]
pub struct DeliveryReport {
    pub design: &'static str,
    pub messages: u64,
    /// Recipient deliveries owed (each message's recipients).
    pub expected: u64,
    pub delivered: u64,
    /// Deliveries dropped: recipients whose job went to the dead-letter queue.
    pub lost: u64,
    /// Deliveries still owed when the horizon was reached.
    pub unfinished: u64,
    /// Send → each delivery.
    pub latency: Latencies,
    /// Send → route's answer (its ACK).
    pub ack: Latencies,
    pub posts: u64,
    pub throttled_posts: u64,
    pub inbound_throttled: u64,
    pub lambda_throttled: u64,
    pub queued_jobs: u64,
    pub broadcast_runs: u64,
    pub peak_concurrency: u32,
    pub api_utilisation: f64,
    pub first_delivery: Time,
    pub last_delivery: Time,
    pub events: u64,
    /// Per bin: delivered, throttled posts, frames offered by senders.
    pub series: Series,
}

#[derive(Clone, Debug)]
enum Recipients {
    Range(u32, u32),
    List(VecDeque<u32>),
}

impl Recipients {
    fn len(&self) -> u32 {
        match self {
            Recipients::Range(lo, hi) => hi - lo,
            Recipients::List(l) => l.len() as u32,
        }
    }

    /// The first `n`, taken off.
    fn take(&mut self, n: u32) -> Vec<u32> {
        match self {
            Recipients::Range(lo, hi) => {
                let end = (*lo + n).min(*hi);
                let page = (*lo..end).collect();
                *lo = end;
                page
            }
            Recipients::List(l) => {
                let n = (n as usize).min(l.len());
                l.drain(..n).collect()
            }
        }
    }
}

#[derive(Debug)]
struct Job {
    msg: u32,
    recipients: Recipients,
    attempt: u32,
}

struct Group {
    /// (conversation, shard).
    key: (u32, u32),
    jobs: VecDeque<Job>,
    busy: bool,
}

struct Run {
    msg: u32,
    /// None: route's own posts before its ACK.
    group: Option<usize>,
    unread: Recipients,
    reading: Vec<u32>,
    pending: VecDeque<u32>,
    in_flight: u32,
    next_read: u32,
    failed: Vec<u32>,
    /// Still throttled after the run's tries (or at its deadline): a continuation job.
    throttled_out: Vec<u32>,
    /// Backoff: no post starts before this (the run's pause after a 429), and the 429s in a
    /// row that set it.
    resume_at: Time,
    in_a_row: u32,
    /// Posts in flight allowed: halved by each pause, grown by 1/window a delivery.
    window: f64,
    attempt: u32,
    retry_tokens: f64,
    deadline: Time,
    finished: bool,
}

enum Ev {
    Send {
        msg: u32,
        tries: u32,
    },
    Route {
        msg: u32,
    },
    GroupNext {
        group: usize,
    },
    Read {
        run: usize,
    },
    /// `attempt`: the SDK's attempt within one call; `tries`: the run's calls for this post.
    Try {
        run: usize,
        recipient: u32,
        attempt: u32,
        tries: u32,
    },
    Done {
        run: usize,
        recipient: u32,
        attempt: u32,
        tries: u32,
        ok: bool,
    },
}

/// The simulation. `horizon`: simulated time after which what is still owed is reported as
/// unfinished.
pub fn simulate(
    traffic: &Traffic,
    quotas: &Quotas,
    times: &Times,
    design: &Design,
    seed: u64,
    horizon: Time,
    bin: Time,
) -> DeliveryReport {
    let mut sim = Sim {
        traffic,
        times,
        design,
        rng: Rng::new(seed),
        q: Queue::default(),
        api: TokenBucket::new("api", quotas.api_requests_per_second, quotas.api_burst),
        lambda: Pool::new("lambda", quotas.lambda_concurrency),
        groups: Vec::new(),
        group_of: HashMap::new(),
        runs: Vec::new(),
        sent_at: vec![0; traffic.messages.len()],
        report: DeliveryReport {
            design: design.name,
            messages: traffic.messages.len() as u64,
            expected: traffic
                .messages
                .iter()
                .map(|&(_, c)| u64::from(traffic.conversations[c as usize]))
                .sum(),
            delivered: 0,
            lost: 0,
            unfinished: 0,
            latency: Latencies::default(),
            ack: Latencies::default(),
            posts: 0,
            throttled_posts: 0,
            inbound_throttled: 0,
            lambda_throttled: 0,
            queued_jobs: 0,
            broadcast_runs: 0,
            peak_concurrency: 0,
            api_utilisation: 0.0,
            first_delivery: Time::MAX,
            last_delivery: 0,
            events: 0,
            series: Series::new(bin, &["delivered", "throttled_posts", "offered_frames"]),
        },
    };
    for (i, &(at, _)) in traffic.messages.iter().enumerate() {
        sim.sent_at[i] = at;
        sim.q.at(
            at,
            Ev::Send {
                msg: i as u32,
                tries: 0,
            },
        );
    }
    while let Some(ev) = sim.q.pop() {
        if sim.q.now > horizon {
            break;
        }
        sim.handle(ev);
    }
    let mut report = sim.report;
    report.unfinished = report.expected - report.delivered - report.lost;
    report.peak_concurrency = sim.lambda.peak;
    report.api_utilisation = sim.api.utilisation(sim.q.now.min(horizon));
    report.events = sim.q.handled;
    if report.first_delivery == Time::MAX {
        report.first_delivery = 0;
    }
    report
}

struct Sim<'a> {
    traffic: &'a Traffic,
    times: &'a Times,
    design: &'a Design,
    rng: Rng,
    q: Queue<Ev>,
    api: TokenBucket,
    lambda: Pool,
    groups: Vec<Group>,
    group_of: HashMap<(u32, u32), usize>,
    runs: Vec<Run>,
    sent_at: Vec<Time>,
    report: DeliveryReport,
}

impl Sim<'_> {
    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Send { msg, tries } => self.send(msg, tries),
            Ev::Route { msg } => self.route(msg),
            Ev::GroupNext { group } => self.group_next(group),
            Ev::Read { run } => {
                let r = &mut self.runs[run];
                let page = std::mem::take(&mut r.reading);
                r.pending.extend(page);
                self.start_read(run);
                self.pump(run);
            }
            Ev::Try {
                run,
                recipient,
                attempt,
                tries,
            } => {
                let now = self.q.now;
                let resume_at = self.runs[run].resume_at;
                if attempt == 0 && now < resume_at {
                    // A new call waits out the run's pause (broadcast's Pacer).
                    self.q.at(
                        resume_at,
                        Ev::Try {
                            run,
                            recipient,
                            attempt,
                            tries,
                        },
                    );
                    return;
                }
                let ok = self.api.take(now, 1.0);
                let took = if ok {
                    self.report.posts += 1;
                    self.rng.around(self.times.post)
                } else {
                    self.report.throttled_posts += 1;
                    self.report.series.add(now, 1, 1.0);
                    self.rng.around(self.times.throttled_post)
                };
                self.q.after(
                    took,
                    Ev::Done {
                        run,
                        recipient,
                        attempt,
                        tries,
                        ok,
                    },
                );
            }
            Ev::Done {
                run,
                recipient,
                attempt,
                tries,
                ok,
            } => self.done(run, recipient, attempt, tries, ok),
        }
    }

    fn conversation(&self, msg: u32) -> u32 {
        self.traffic.messages[msg as usize].1
    }

    fn recipients(&self, msg: u32) -> u32 {
        self.traffic.conversations[self.conversation(msg) as usize]
    }

    /// A client's frame reaches API Gateway and, if admitted, the route function.
    fn send(&mut self, msg: u32, tries: u32) {
        let now = self.q.now;
        self.report.series.add(now, 2, 1.0);
        let admitted = if !self.api.take(now, 1.0) {
            self.report.inbound_throttled += 1;
            false
        } else if !self.lambda.acquire() {
            self.report.lambda_throttled += 1;
            false
        } else {
            true
        };
        if admitted {
            let took = self.rng.around(self.times.route);
            self.q.after(took, Ev::Route { msg });
        } else {
            // The client SDK sends the frame again after its backoff (same clientMessageId).
            let wait = self
                .rng
                .full_jitter(CLIENT_BACKOFF_BASE, CLIENT_BACKOFF_CAP, tries);
            self.q.after(
                wait,
                Ev::Send {
                    msg,
                    tries: tries + 1,
                },
            );
        }
    }

    /// The message is stored: route queues what it will not post itself, then posts the rest
    /// before it answers.
    fn route(&mut self, msg: u32) {
        let n = self.recipients(msg);
        let conv = self.conversation(msg);
        let direct = self.design.direct_fanout.min(n);
        if self.design.shard_size > 0 && n > self.design.direct_fanout {
            // One job per shard, each in its own message group: posted in parallel.
            let shards = self.design.shards(n);
            for s in 0..shards {
                let lo = (u64::from(s) * u64::from(n) / u64::from(shards)) as u32;
                let hi = (u64::from(s + 1) * u64::from(n) / u64::from(shards)) as u32;
                self.enqueue(
                    (conv, s),
                    Job {
                        msg,
                        recipients: Recipients::Range(lo, hi),
                        attempt: 0,
                    },
                );
            }
            self.answer(msg);
            return;
        }
        if n > direct {
            self.enqueue(
                (conv, 0),
                Job {
                    msg,
                    recipients: Recipients::Range(direct, n),
                    attempt: 0,
                },
            );
        }
        if direct == 0 {
            self.answer(msg);
            return;
        }
        let run = self.new_run(msg, None, Recipients::Range(0, direct), 0);
        self.runs[run].next_read = direct;
        self.start_read(run);
    }

    fn answer(&mut self, msg: u32) {
        let now = self.q.now;
        self.report.ack.record(now - self.sent_at[msg as usize]);
        self.lambda.release();
    }

    fn enqueue(&mut self, key: (u32, u32), job: Job) {
        let g = match self.group_of.get(&key) {
            Some(&g) => g,
            None => {
                self.groups.push(Group {
                    key,
                    jobs: VecDeque::new(),
                    busy: false,
                });
                self.group_of.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        self.report.queued_jobs += 1;
        self.groups[g].jobs.push_back(job);
        if !self.groups[g].busy {
            self.groups[g].busy = true;
            let hop = self.rng.around(self.times.queue_hop);
            self.q.after(hop, Ev::GroupNext { group: g });
        }
    }

    /// The group's first job is received by a broadcast run.
    fn group_next(&mut self, g: usize) {
        if self.groups[g].jobs.is_empty() {
            self.groups[g].busy = false;
            return;
        }
        if !self.lambda.acquire() {
            // The event source mapping waits for concurrency; nothing is lost.
            self.report.lambda_throttled += 1;
            self.q.after(100 * MILLI, Ev::GroupNext { group: g });
            return;
        }
        let mut job = self.groups[g].jobs.pop_front().expect("checked");
        if job.recipients.len() > self.design.per_run {
            // A next-page job, queued behind (broadcast sends it as the run starts).
            let rest = match &mut job.recipients {
                Recipients::Range(lo, hi) => {
                    let cut = *lo + self.design.per_run;
                    let rest = Recipients::Range(cut, *hi);
                    *hi = cut;
                    rest
                }
                Recipients::List(l) => Recipients::List(l.split_off(self.design.per_run as usize)),
            };
            self.report.queued_jobs += 1;
            self.groups[g].jobs.push_back(Job {
                msg: job.msg,
                recipients: rest,
                attempt: job.attempt,
            });
        }
        self.report.broadcast_runs += 1;
        let run = self.new_run(job.msg, Some(g), job.recipients, job.attempt);
        self.start_read(run);
    }

    fn new_run(
        &mut self,
        msg: u32,
        group: Option<usize>,
        recipients: Recipients,
        attempt: u32,
    ) -> usize {
        let budget = if group.is_some() {
            self.design.run_budget
        } else {
            self.design.direct_budget
        };
        self.runs.push(Run {
            msg,
            group,
            unread: recipients,
            reading: Vec::new(),
            pending: VecDeque::new(),
            in_flight: 0,
            next_read: self.design.first_read,
            failed: Vec::new(),
            throttled_out: Vec::new(),
            resume_at: 0,
            in_a_row: 0,
            window: f64::from(self.design.post_concurrency.max(1)),
            attempt,
            retry_tokens: SDK_RETRY_QUOTA,
            deadline: self.q.now + budget,
            finished: false,
        });
        self.runs.len() - 1
    }

    /// Reads the next page while the one before is posted.
    fn start_read(&mut self, run: usize) {
        let r = &mut self.runs[run];
        if !r.reading.is_empty() || r.unread.len() == 0 || r.finished {
            return;
        }
        let n = r.next_read.max(1);
        r.reading = r.unread.take(n);
        r.next_read = n.saturating_mul(self.design.read_growth.max(1));
        let took = self.times.query + self.times.query_per_item * r.reading.len() as Time;
        let took = self.rng.around(took);
        self.q.after(took, Ev::Read { run });
    }

    fn pump(&mut self, run: usize) {
        let now = self.q.now;
        let r = &mut self.runs[run];
        if r.finished {
            return;
        }
        if now >= r.deadline && (!r.pending.is_empty() || r.unread.len() > 0) {
            // Out of time: the rest goes to a continuation job (nothing dropped).
            let mut rest: VecDeque<u32> = std::mem::take(&mut r.pending);
            let unread = std::mem::replace(&mut r.unread, Recipients::Range(0, 0));
            let mut unread = unread;
            let n = unread.len();
            rest.extend(unread.take(n));
            let (msg, attempt) = (r.msg, r.attempt);
            let key = match self.runs[run].group {
                Some(g) => self.groups[g].key,
                None => (self.conversation(msg), 0),
            };
            self.enqueue(
                key,
                Job {
                    msg,
                    recipients: Recipients::List(rest),
                    attempt,
                },
            );
        }
        let r = &mut self.runs[run];
        while f64::from(r.in_flight) < r.window.floor().max(1.0) {
            let Some(recipient) = r.pending.pop_front() else {
                break;
            };
            r.in_flight += 1;
            self.q.at(
                now,
                Ev::Try {
                    run,
                    recipient,
                    attempt: 0,
                    tries: 0,
                },
            );
        }
        let r = &self.runs[run];
        if r.in_flight == 0 && r.pending.is_empty() && r.reading.is_empty() && r.unread.len() == 0 {
            self.finish(run);
        }
    }

    fn done(&mut self, run: usize, recipient: u32, attempt: u32, tries: u32, ok: bool) {
        let now = self.q.now;
        if ok {
            let msg = self.runs[run].msg;
            self.report.delivered += 1;
            self.report.latency.record(now - self.sent_at[msg as usize]);
            self.report.first_delivery = self.report.first_delivery.min(now);
            self.report.last_delivery = self.report.last_delivery.max(now);
            self.report.series.add(now, 0, 1.0);
            let r = &mut self.runs[run];
            r.in_flight -= 1;
            r.retry_tokens = (r.retry_tokens + 1.0).min(SDK_RETRY_QUOTA);
            r.in_a_row = 0;
            r.window =
                (r.window + 1.0 / r.window).min(f64::from(self.design.post_concurrency.max(1)));
            self.pump(run);
            return;
        }
        // A 429. Before backoff the SDK retried it first; the code's `@connections` client now
        // makes no retries of its own, and the run paces itself.
        let sdk_attempts = match self.design.on_throttle {
            OnThrottle::Requeue => SDK_ATTEMPTS,
            OnThrottle::Backoff => 1,
        };
        let r = &mut self.runs[run];
        let again = if attempt + 1 < sdk_attempts && r.retry_tokens >= SDK_RETRY_COST {
            r.retry_tokens -= SDK_RETRY_COST;
            let wait = self
                .rng
                .full_jitter(SDK_BACKOFF_BASE, SDK_BACKOFF_CAP, attempt);
            Some((now + wait, attempt + 1, tries))
        } else {
            match self.design.on_throttle {
                OnThrottle::Requeue => None,
                OnThrottle::Backoff => {
                    // A 429 during the run's pause (a post in flight when it began) adds none.
                    if now >= r.resume_at {
                        r.in_a_row += 1;
                        let pause = self
                            .rng
                            .full_jitter(BACKOFF_BASE, BACKOFF_CAP, r.in_a_row - 1);
                        r.resume_at = now + pause;
                        r.window = (r.window / 2.0).max(1.0);
                    }
                    if tries + 1 >= MAX_THROTTLED_TRIES || now >= r.deadline {
                        r.throttled_out.push(recipient);
                        r.in_flight -= 1;
                        self.pump(run);
                        return;
                    }
                    Some((r.resume_at, 0, tries + 1))
                }
            }
        };
        match again {
            // The post keeps its place among those in flight while it waits.
            Some((at, attempt, tries)) => self.q.at(
                at,
                Ev::Try {
                    run,
                    recipient,
                    attempt,
                    tries,
                },
            ),
            None => {
                r.failed.push(recipient);
                r.in_flight -= 1;
                self.pump(run);
            }
        }
    }

    fn finish(&mut self, run: usize) {
        let r = &mut self.runs[run];
        r.finished = true;
        let failed = std::mem::take(&mut r.failed);
        let throttled = std::mem::take(&mut r.throttled_out);
        let (msg, group, attempt) = (r.msg, r.group, r.attempt);
        let conv = self.conversation(msg);
        if !throttled.is_empty() {
            // Not an attempt: a continuation, behind the group's later jobs.
            let key = group.map_or((conv, 0), |g| self.groups[g].key);
            self.enqueue(
                key,
                Job {
                    msg,
                    recipients: Recipients::List(throttled.into()),
                    attempt,
                },
            );
        }
        match group {
            None => {
                self.answer(msg);
                if !failed.is_empty() {
                    self.enqueue(
                        (conv, 0),
                        Job {
                            msg,
                            recipients: Recipients::List(failed.into()),
                            attempt: 1,
                        },
                    );
                }
            }
            Some(g) => {
                self.lambda.release();
                if !failed.is_empty() {
                    if attempt + 1 >= JOB_ATTEMPTS {
                        self.report.lost += failed.len() as u64;
                    } else {
                        self.report.queued_jobs += 1;
                        self.groups[g].jobs.push_back(Job {
                            msg,
                            recipients: Recipients::List(failed.into()),
                            attempt: attempt + 1,
                        });
                    }
                }
                // The next job of the group is received once this one is deleted.
                let hop = self.rng.around(self.times.queue_hop);
                self.q.after(hop, Ev::GroupNext { group: g });
            }
        }
    }
}

/// One message to `recipients` connected clients, alone: the bench's fan-out row.
pub fn one_message(recipients: u32) -> Traffic {
    Traffic {
        conversations: vec![recipients],
        messages: vec![(0, 0)],
    }
}

/// `rate` messages a second for `seconds`, each to a conversation drawn uniformly from
/// `conversations` of `recipients` each (Poisson arrivals).
pub fn chatting(
    conversations: u32,
    recipients: u32,
    rate: f64,
    seconds: f64,
    seed: u64,
) -> Traffic {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut t = 0.0f64;
    let mut messages = Vec::new();
    loop {
        t += -(1.0 - rng.unit()).ln() / rate;
        if t >= seconds {
            break;
        }
        let conv = rng.below(u64::from(conversations)) as u32;
        messages.push(((t * SECOND as f64) as Time, conv));
    }
    Traffic {
        conversations: vec![recipients; conversations as usize],
        messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Quotas, Times};

    fn run(traffic: &Traffic, quotas: &Quotas, design: &Design, seed: u64) -> DeliveryReport {
        simulate(
            traffic,
            quotas,
            &Times::aws(),
            design,
            seed,
            600 * SECOND,
            100 * MILLI,
        )
    }

    #[test]
    fn without_quotas_every_message_reaches_every_recipient_once_in_both_designs() {
        let traffic = Traffic {
            conversations: vec![3, 500, 5_000],
            messages: vec![
                (0, 0),
                (0, 1),
                (10 * MILLI, 2),
                (20 * MILLI, 2),
                (SECOND, 1),
            ],
        };
        for design in [Design::before_shards(), Design::today()] {
            let r = run(&traffic, &Quotas::unlimited(), &design, 1);
            assert_eq!(r.expected, 3 + 500 + 5_000 * 2 + 500);
            assert_eq!(r.delivered, r.expected, "{}", design.name);
            assert_eq!((r.lost, r.unfinished, r.throttled_posts), (0, 0, 0));
            assert_eq!(r.ack.len(), 5);
            assert_eq!(r.latency.len() as u64, r.delivered);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_report_and_another_seed_another() {
        let traffic = chatting(200, 9, 500.0, 2.0, 3);
        let quotas = Quotas {
            api_requests_per_second: 3_000.0,
            api_burst: 500.0,
            ..Quotas::aws_default()
        };
        let a = run(&traffic, &quotas, &Design::today(), 9);
        let b = run(&traffic, &quotas, &Design::today(), 9);
        let c = run(&traffic, &quotas, &Design::today(), 10);
        let key = |r: &DeliveryReport| {
            (
                r.delivered,
                r.lost,
                r.throttled_posts,
                r.last_delivery,
                r.events,
            )
        };
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
    }

    #[test]
    fn a_large_conversation_was_posted_in_sequence_and_is_posted_in_parallel_shards_today() {
        let traffic = one_message(20_000);
        let before = run(&traffic, &Quotas::unlimited(), &Design::before_shards(), 1);
        let today = run(&traffic, &Quotas::unlimited(), &Design::today(), 1);
        assert_eq!(before.delivered, 20_000);
        assert_eq!(today.delivered, 20_000);
        // Before shards: ten runs of 2,000 one after another; today: ten shards at once.
        assert_eq!(before.broadcast_runs, 10);
        assert_eq!(today.broadcast_runs, 10);
        assert!(
            today.last_delivery * 4 < before.last_delivery,
            "{} vs {}",
            today.last_delivery,
            before.last_delivery
        );
        assert_eq!(today.peak_concurrency, 10, "route answered before the runs");
    }

    #[test]
    fn throttled_posts_were_lost_by_requeueing_and_are_only_delayed_with_backoff() {
        // 20,000 requests a second offered to 2,000 a second.
        let traffic = chatting(2_000, 9, 2_000.0, 2.0, 5);
        let quotas = Quotas {
            api_requests_per_second: 2_000.0,
            api_burst: 500.0,
            ..Quotas::aws_default()
        };
        let before = run(&traffic, &quotas, &Design::before_backoff(), 1);
        let today = run(&traffic, &quotas, &Design::today(), 1);
        assert!(
            before.lost > 0,
            "the dead-letter queue took throttled recipients"
        );
        assert_eq!(before.delivered + before.lost, before.expected);
        assert_eq!(today.lost + today.unfinished, 0);
        assert_eq!(today.delivered, today.expected);
        assert!(today.throttled_posts > 0, "the throttle is met");
    }

    #[test]
    fn an_announcement_over_the_account_throttle_is_paced_not_dropped() {
        let traffic = one_message(50_000);
        let today = run(&traffic, &Quotas::aws_default(), &Design::today(), 1);
        assert_eq!(today.delivered, 50_000);
        assert!(today.throttled_posts > 0, "the throttle is met");
        // 50,000 posts at 10,000 a second after a 5,000 burst: no sooner than 4.5 s.
        assert!(
            today.last_delivery >= 4_500 * MILLI,
            "{}",
            today.last_delivery
        );
    }
}
