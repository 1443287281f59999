//! Catching panics at task boundaries (a request, a connection, a producer,
//! a badge write) so one bug costs one answer, never the process, a leaked
//! gauge or a viewer's stream. Each caught panic is counted
//! (`framecast_panics_total{where}`) and logged exactly once, as one line
//! with its context (the request line, the channel) and where it happened.
//! Panics outside such a boundary still go to the default hook.
//!
//! May import: metrics.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::future::Future;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

use futures_util::FutureExt;

use crate::metrics::metrics;

thread_local! {
    /// True while a `catch` boundary polls its future on this thread.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook that stays quiet for panics a boundary will report.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo| {
            if CATCHING.get() {
                let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
                LOCATION.set(location);
            } else {
                default(info);
            }
        }));
    });
}

/// Runs `future`; a panic in it is counted under `place`, logged once with
/// `context`, and returned as `Err(())`.
///
/// Not an `async fn`: that would keep room for `future` in its own state as
/// well as in the box (a connection's future is kilobytes, held per viewer).
pub fn catch<F: Future>(
    place: &'static str,
    context: impl Display,
    future: F,
) -> impl Future<Output = Result<F::Output, ()>> {
    let caught = AssertUnwindSafe(Flagged(Box::pin(future))).catch_unwind();
    async move {
        match caught.await {
            Ok(out) => Ok(out),
            Err(panic) => {
                metrics().panic(place);
                let location = LOCATION.take().unwrap_or_else(|| "unknown".into());
                tracing::error!(place, %context, %location, panic = %message(&*panic), "panic caught");
                Err(())
            }
        }
    }
}

/// Sets `CATCHING` around each poll of the inner future (boxed: one
/// allocation per request or task, never per frame).
struct Flagged<F>(Pin<Box<F>>);

/// Puts `CATCHING` back as it was, also when the poll unwinds.
struct Restore(bool);

impl Drop for Restore {
    fn drop(&mut self) {
        CATCHING.set(self.0);
    }
}

impl<F: Future> Future for Flagged<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _restore = Restore(CATCHING.replace(true));
        self.0.as_mut().poll(cx)
    }
}

/// The text of a panic payload (`panic!("...")` carries a `&str` or `String`).
pub fn message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".to_string(),
    }
}
