//! A runtime-agnostic start gate: tasks wait on it and are released together, so concurrent
//! checks contend as hard as the runtime allows instead of running one after another.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct State {
    open: bool,
    waiters: Vec<Waker>,
}

/// Closed until [`Gate::open`]; then every waiter (and every later one) proceeds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate(Arc<Mutex<State>>);

impl Gate {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Releases every waiter.
    pub(crate) fn open(&self) {
        let waiters = {
            let mut s = self.state();
            s.open = true;
            std::mem::take(&mut s.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once the gate is open.
    pub(crate) fn wait(&self) -> Wait {
        Wait(self.clone())
    }
}

/// The future of [`Gate::wait`].
#[derive(Debug)]
pub(crate) struct Wait(Gate);

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.0.state();
        if s.open {
            Poll::Ready(())
        } else {
            s.waiters.push(cx.waker().clone());
            Poll::Pending
        }
    }
}
