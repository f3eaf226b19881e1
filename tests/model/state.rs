//! The model's state: Tencent's books, the stored object, each replica's memory, and ghost bookkeeping
//! for the invariants. Big values (statuses, attempts, answers) are interned so a state is small and
//! hashes fast.

use std::collections::HashMap;
use std::fmt::Debug;

use dealpay_operator::api::IdKind;

/// Orders (sub-orders) in the world and ids in the spec are at most this many.
pub const N: usize = 2;

/// Interned value id.
pub type Id = u32;

/// Values by id, ids by the value's Debug text.
pub struct Interner<T> {
    pub items: Vec<T>,
    index: HashMap<String, Id>,
}

impl<T: Debug> Interner<T> {
    pub fn new() -> Self {
        Self {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
    /// The id of `v`, and whether it is new.
    pub fn intern(&mut self, v: T) -> (Id, bool) {
        let key = format!("{v:?}");
        if let Some(id) = self.index.get(&key) {
            return (*id, false);
        }
        let id = self.items.len() as Id;
        self.items.push(v);
        self.index.insert(key, id);
        (id, true)
    }
    pub fn get(&self, id: Id) -> &T {
        &self.items[id as usize]
    }
}

/// Which faults the environment may inject (each one spends the fault budget).
#[derive(Clone, Debug)]
pub struct Faults {
    /// Every PayDeals outcome other than the truthful success.
    pub pay: bool,
    /// DescribeDealsByCond errors.
    pub lookup: bool,
    /// Replica crashes at every step.
    pub crash: bool,
    /// The other replica takes the Lease.
    pub lease: bool,
    /// Reads from a stale cache.
    pub stale: bool,
    /// Delivery failure, cancellation, refund.
    pub env: bool,
    /// Only the unknown-outcome faults of PayDeals (for the long storm scenario).
    pub only_unknown: bool,
    /// A PayDeals whose client is cut off before it runs, then executed by the API at any later step
    /// until its signature expires (300 s after the attempt started: it is signed with that time).
    pub late: bool,
}

/// A PayDeals request the client gave up on that the API may still execute.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Late {
    /// What it charges when it runs (like `PayOutcome::set`).
    pub set: [Option<u8>; N],
    /// Model time after which the API refuses it (signature expired).
    pub until: u64,
}

/// One scenario.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: &'static str,
    /// Spec list kind.
    pub kind: IdKind,
    /// Spec ids (orders or big deals).
    pub ids: Vec<&'static str>,
    /// World sub-orders: (order id, big deal id).
    pub subs: Vec<(&'static str, &'static str)>,
    /// Pay-together groups (sub-order indices): paying part of one is refused.
    pub groups: Vec<Vec<usize>>,
    pub replicas: usize,
    pub max_faults: u8,
    pub depth: usize,
    pub faults: Faults,
    /// Steps of the fault-free continuation for liveness.
    pub live_bound: usize,
    /// A replica may pause between its lease check and its PayDeals send (GC pause), and may take the
    /// Lease back while an old reconcile of its own is still before its lease check (Lease ABA).
    pub pause_after_lease_check: bool,
}

/// Where a replica is in its reconcile. `lag` is how many writes the object has had since the
/// replica's version (0: its write precondition holds).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Pc {
    Idle,
    /// The write-ahead record is stored; next: lease check, then PayDeals.
    PayWritten {
        lag: u8,
        st: Id,
        att: Id,
    },
    /// Past the lease check, PayDeals not yet sent.
    Paused {
        lag: u8,
        st: Id,
        att: Id,
    },
    /// PayDeals answered; the answer is only in memory.
    PayAnswered {
        lag: u8,
        st: Id,
        att: Id,
        res: Id,
    },
    /// About to call DescribeDealsByCond.
    LookupReady {
        lag: u8,
        st: Id,
        act: Id,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Rep {
    pub pc: Pc,
    /// When this replica asked to be woken (RequeueAfter / recheck).
    pub wake: Option<u64>,
}

/// Bookkeeping that only the invariants read (per spec id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Ghost {
    /// PayDeals calls sent.
    pub pays: [u8; N],
    /// A PayDeals for it was sent and no definite answer nor lookup answer has been seen since.
    pub unknown: [bool; N],
    /// Model time of the last PayDeals sent.
    pub last_pay: [Option<u64>; N],
    /// Least gap to the next PayDeals, from the class of the last folded answer.
    pub gap: [u64; N],
    /// Whether the last PayDeals sent charged anything (a call that charged something worked).
    pub charged_by_last: [bool; N],
    /// Consecutive folded unknown outcomes of calls that charged nothing.
    pub run: [u8; N],
}

/// Everything that moves.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct State {
    /// Milliseconds since T0.
    pub now: u64,
    /// Tencent status per sub-order.
    pub tstatus: [u8; N],
    /// The ledger: charges per sub-order.
    pub charges: [u8; N],
    /// The stored status, and the version before it (what a stale cache may still show).
    pub store: Id,
    pub prev: Option<Id>,
    pub lease: u8,
    pub reps: [Rep; 2],
    pub faults: u8,
    pub ghost: Ghost,
    /// A request in the API's queue that its client gave up on (the `late` fault).
    pub late: Option<Late>,
}

impl State {
    pub fn initial(cfg: &Config, none_status: Id) -> Self {
        Self {
            now: 0,
            tstatus: [1; N],
            charges: [0; N],
            store: none_status,
            prev: None,
            lease: 0,
            reps: [Rep {
                pc: Pc::Idle,
                wake: None,
            }; 2],
            faults: 0,
            ghost: Ghost::default(),
            late: None,
        }
        .with_subs(cfg.subs.len())
    }
    fn with_subs(mut self, n: usize) -> Self {
        for i in n..N {
            self.tstatus[i] = 0;
        }
        self
    }
    /// The physical part (what the fault-free continuation depends on).
    pub fn phys(&self) -> State {
        State {
            faults: 0,
            ghost: Ghost::default(),
            ..self.clone()
        }
    }
}

pub fn bump_lag(pc: &mut Pc) {
    match pc {
        Pc::Idle => {}
        Pc::PayWritten { lag, .. }
        | Pc::Paused { lag, .. }
        | Pc::PayAnswered { lag, .. }
        | Pc::LookupReady { lag, .. } => *lag = (*lag + 1).min(2),
    }
}
