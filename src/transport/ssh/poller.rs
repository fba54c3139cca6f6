//! One thread that waits on every streaming node's socket at once (epoll through `mio`), so a fleet of
//! nodes each sending a sample a second costs a few wakeups a second rather than one per node: each node's
//! worker hands its running stream here and blocks until the stream ends.

use std::os::fd::RawFd;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::connected::{fail, NodeFailure};
use super::following::{Following, Progress, Step};
use crate::transport::FailureKind;

/// After a socket wakes the poller it waits up to this long before reading, so the samples of other nodes
/// that arrive meanwhile are read on the same wakeup: 1,024 nodes at 1 Hz arrive about one a millisecond,
/// and 100 ms serves about a hundred of them per wakeup (ten wakeups a second, not one per sample) while
/// delaying a sample a tenth of its interval. Shorter intervals wait less: see [`Following::coalesce`].
const MOST_COALESCE: Duration = Duration::from_millis(100);
/// Most reads of one node per pass, so a node that floods cannot keep the poller from the others; what is
/// left is read on the next pass.
const READS_PER_PASS: usize = 64;
/// The token of the waker that says a new stream has been handed over.
const NEW_STREAM: Token = Token(usize::MAX);

/// A stream handed over by its node's worker, and where its ending goes back.
struct Job {
    following: Following,
    fd: RawFd,
    done: mpsc::SyncSender<(Following, Result<Step, NodeFailure>)>,
}

struct Handle {
    jobs: Mutex<mpsc::Sender<Job>>,
    waker: Waker,
}

static POLLER: OnceLock<Result<Handle, String>> = OnceLock::new();

/// Follows `following` on the shared poller until it ends; returns it with its ending. The caller's session
/// must be non-blocking, and `fd` its socket.
pub(super) fn follow(
    following: Following,
    fd: RawFd,
) -> Result<(Following, Result<Step, NodeFailure>), NodeFailure> {
    let handle = POLLER.get_or_init(start).as_ref().map_err(|e| {
        fail(
            FailureKind::Unreachable,
            format!("cannot wait on SSH sockets: {e}"),
        )
    })?;
    let (done, ended) = mpsc::sync_channel(1);
    let sent = handle
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(Job {
            following,
            fd,
            done,
        });
    let gone = || fail(FailureKind::Unreachable, "the SSH stream poller stopped");
    sent.map_err(|_| gone())?;
    handle.waker.wake().map_err(|_| gone())?;
    ended.recv().map_err(|_| gone())
}

fn start() -> Result<Handle, String> {
    let poll = Poll::new().map_err(|e| e.to_string())?;
    let waker = Waker::new(poll.registry(), NEW_STREAM).map_err(|e| e.to_string())?;
    let (jobs, handed) = mpsc::channel();
    std::thread::Builder::new()
        .name("ssh-poller".into())
        .spawn(move || Poller::new(poll, handed).run())
        .map_err(|e| e.to_string())?;
    Ok(Handle {
        jobs: Mutex::new(jobs),
        waker,
    })
}

/// What the poller must look at in a node without its socket waking: kept beside the jobs, in a dense
/// list, so a pass finds the few nodes that are due without touching every node's stream.
#[derive(Clone, Copy)]
struct Due {
    deadline: Instant,
    request_pending: bool,
}

impl Due {
    fn of(following: &Following) -> Due {
        Due {
            deadline: following.deadline(),
            request_pending: following.request_pending(),
        }
    }
}

struct Poller {
    poll: Poll,
    handed: mpsc::Receiver<Job>,
    slots: Vec<Option<Job>>,
    /// By slot, each job's [`Due`] as of its last read or check; `None` for a free slot.
    dues: Vec<Option<Due>>,
    free: Vec<usize>,
    /// Nodes to read on this pass: woken, new, or left unread by the last pass.
    ready: Vec<usize>,
    /// The nodes being read, swapped with `ready` each pass so neither list is allocated again.
    reading: Vec<usize>,
    /// The earliest deadline of any node, as of the last pass's checks.
    next_due: Option<Instant>,
    /// How long a wakeup waits for more nodes: the shortest any stream allows.
    coalesce: Duration,
    buf: Vec<u8>,
}

impl Poller {
    fn new(poll: Poll, handed: mpsc::Receiver<Job>) -> Poller {
        Poller {
            poll,
            handed,
            slots: Vec::new(),
            dues: Vec::new(),
            free: Vec::new(),
            ready: Vec::new(),
            reading: Vec::new(),
            next_due: None,
            coalesce: MOST_COALESCE,
            buf: vec![0u8; 16 * 1024],
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = if self.ready.is_empty() {
                let now = Instant::now();
                self.next_due.map(|d| d.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            if self.wait(&mut events, timeout) {
                std::thread::sleep(self.coalesce);
                self.wait(&mut events, Some(Duration::ZERO));
            }
            self.take_new();
            std::mem::swap(&mut self.ready, &mut self.reading);
            self.reading.sort_unstable();
            self.reading.dedup();
            for i in 0..self.reading.len() {
                self.read(self.reading[i]);
            }
            self.reading.clear();
            self.check_due(Instant::now());
        }
    }

    /// Checks the nodes whose deadline has come or whose request waits, and notes the next deadline: one
    /// walk of the dense list per pass.
    fn check_due(&mut self, now: Instant) {
        let mut next: Option<Instant> = None;
        for slot in 0..self.dues.len() {
            let Some(due) = self.dues[slot] else {
                continue;
            };
            if due.request_pending || due.deadline <= now {
                self.check(slot, now);
            }
            if let Some(due) = self.dues[slot] {
                next = Some(next.map_or(due.deadline, |n| n.min(due.deadline)));
            }
        }
        self.next_due = next;
    }

    /// Waits for sockets; true when a node's socket woke it.
    fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> bool {
        if self.poll.poll(events, timeout).is_err() {
            // EINTR, or a transient failure: the deadlines are checked and the wait begins again.
            return false;
        }
        let mut socket = false;
        for event in events.iter() {
            if event.token() != NEW_STREAM {
                self.ready.push(event.token().0);
                socket = true;
            }
        }
        socket
    }

    /// Registers the streams handed over since the last pass, and reads each once (libssh2 may hold data
    /// already read from its socket).
    fn take_new(&mut self) {
        while let Ok(job) = self.handed.try_recv() {
            let slot = self.free.pop().unwrap_or(self.slots.len());
            let registered = self.poll.registry().register(
                &mut SourceFd(&job.fd),
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            );
            if let Err(e) = registered {
                let failure = fail(
                    FailureKind::Unreachable,
                    format!("cannot wait on the SSH socket: {e}"),
                );
                let _ = job.done.send((job.following, Err(failure)));
                self.free.push(slot);
                continue;
            }
            let due = Some(Due::of(&job.following));
            self.coalesce = self.coalesce.min(job.following.coalesce(MOST_COALESCE));
            if slot == self.slots.len() {
                self.slots.push(Some(job));
                self.dues.push(due);
            } else {
                self.slots[slot] = Some(job);
                self.dues[slot] = due;
            }
            self.ready.push(slot);
        }
    }

    /// Reads a node until its socket would block (at most `READS_PER_PASS` times).
    fn read(&mut self, slot: usize) {
        let Some(job) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        match job.following.read(&mut self.buf, READS_PER_PASS) {
            Progress::Ended(step) => self.finish(slot, step),
            progress => {
                self.dues[slot] = Some(Due::of(&job.following));
                if matches!(progress, Progress::More) {
                    self.ready.push(slot);
                }
            }
        }
    }

    /// Sends a node's pending full-sample request and ends its stream if a deadline has passed.
    fn check(&mut self, slot: usize, now: Instant) {
        let Some(job) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        match job.following.check_deadlines(now) {
            Some(step) => self.finish(slot, step),
            None => self.dues[slot] = Some(Due::of(&job.following)),
        }
    }

    /// Stops waiting on a node's socket (before its worker may close it) and hands the ending back.
    fn finish(&mut self, slot: usize, step: Result<Step, NodeFailure>) {
        let Some(job) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut SourceFd(&job.fd));
        self.dues[slot] = None;
        self.free.push(slot);
        let _ = job.done.send((job.following, step));
    }
}
