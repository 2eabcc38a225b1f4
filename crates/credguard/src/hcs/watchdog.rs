//! The slow-call watchdog: an HCS call that runs longer than a threshold is logged, and
//! waited for.
//!
//! HCS calls are synchronous and can hang (vmcompute.exe busy or wedged). hcsshim logs such
//! calls and keeps waiting; so does credguard, because abandoning a call does not stop it:
//! an AddInstance given up on can still complete, leaving an instance nobody will remove.
//! The call runs on the caller's thread; a watcher thread logs a warning once the threshold
//! has passed, and again when the call finally returns.
//!
//! The warnings name the container the call is made for in their own fields (not only in
//! the caller's span, which an `info` span hides under the default `warn` level): the
//! library marks the HCS calls it makes for a container with [`calls_for`].

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{Dispatch, Span, dispatcher, warn};

use crate::hcs::HcsOperation;

thread_local! {
    /// The container the HCS calls of this thread are made for, if any.
    static CONTAINER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the HCS calls this thread makes as made for `container_id`, until dropped (the
/// previous mark, if any, comes back then).
#[must_use = "the mark lasts as long as the guard"]
pub(crate) struct CallsFor {
    previous: Option<String>,
    /// Thread-bound: the mark belongs to the thread that made it.
    _thread: PhantomData<*const ()>,
}

/// The HCS calls this thread makes, until the guard is dropped, are for `container_id`;
/// the slow-call warnings name it.
pub(crate) fn calls_for(container_id: &str) -> CallsFor {
    let previous = CONTAINER.with(|c| c.replace(Some(container_id.to_owned())));
    CallsFor {
        previous,
        _thread: PhantomData,
    }
}

impl Drop for CallsFor {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CONTAINER.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `call` on this thread; logs a warning if it is still running after `threshold`.
///
/// The warning is written to the caller's tracing subscriber, inside the caller's span,
/// and carries in its own fields the call (`operation`), the container it is made for
/// (`container_id`, see [`calls_for`]) and the compute system it modifies
/// (`compute_system`), so that it names them at any log level. If no watcher thread can be
/// started the call runs unwatched (and a warning says so).
///
/// Used by the Windows backend (computecore.dll); the marks of [`calls_for`] are set on
/// every platform by the lifecycle.
#[cfg_attr(not(any(windows, test)), allow(dead_code))]
pub(crate) fn watch<T>(
    operation: HcsOperation,
    compute_system: Option<&str>,
    threshold: Duration,
    call: impl FnOnce() -> T,
) -> T {
    let container = CONTAINER.with(|c| c.borrow().clone());
    let container_id = container.as_deref();
    let (done, finished) = mpsc::channel::<()>();
    let span = Span::current();
    let dispatch = dispatcher::get_default(Dispatch::clone);
    let started = Instant::now();
    thread::scope(|scope| {
        let watcher = thread::Builder::new()
            .name("hcs-watchdog".to_owned())
            .spawn_scoped(scope, move || {
                // Disconnected (the sender dropped) means the call returned.
                if finished.recv_timeout(threshold) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
                dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| {
                        warn!(
                            operation = %operation,
                            container_id,
                            compute_system,
                            threshold_ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX),
                            "{} is still running after {threshold:?}; waiting for it (an abandoned call can still complete)",
                            operation.api_name()
                        );
                    });
                });
                let _ = finished.recv();
                let elapsed = started.elapsed();
                dispatcher::with_default(&dispatch, || {
                    span.in_scope(|| {
                        warn!(
                            operation = %operation,
                            container_id,
                            compute_system,
                            elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                            "{} returned after {elapsed:?}",
                            operation.api_name()
                        );
                    });
                });
            });
        if let Err(error) = watcher {
            warn!(operation = %operation, container_id, compute_system, error = %error, "cannot start the slow-call watchdog; the call runs unwatched");
        }
        let result = call();
        drop(done);
        result
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A tracing writer that keeps everything written, for tests that look at the log.
    #[derive(Clone, Default)]
    pub(crate) struct CapturedLog(Arc<Mutex<Vec<u8>>>);

    impl CapturedLog {
        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }

        /// Returns once the watchdog has warned that a call of `api` (`HcsModifyServiceSettings`)
        /// is still running: a slow call in a test lasts until then (a signal, not a duration
        /// guessed long enough). A deadline against a watchdog that never warns.
        pub(crate) fn until_warned(&self, api: &str) {
            let warning = format!("{api} is still running after");
            let deadline = Instant::now() + Duration::from_secs(60);
            while !self.text().contains(&warning) {
                assert!(
                    Instant::now() < deadline,
                    "the watchdog never warned about {api}"
                );
                thread::sleep(Duration::from_millis(1));
            }
        }

        /// A subscriber writing plain lines (no colours) into this log.
        pub(crate) fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
            let log = self.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .with_writer(move || log.clone())
                .finish()
        }
    }

    impl Write for CapturedLog {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_call_is_logged_and_waited_for() {
        let log = CapturedLog::default();
        let value = tracing::subscriber::with_default(log.subscriber(), || {
            let _span = tracing::info_span!("outer", container_id = "c1").entered();
            watch(
                HcsOperation::ModifyServiceSettings,
                None,
                Duration::from_millis(5),
                || {
                    log.until_warned("HcsModifyServiceSettings");
                    42
                },
            )
        });
        assert_eq!(value, 42, "the call's own result comes back");
        let text = log.text();
        assert!(
            text.contains("HcsModifyServiceSettings is still running after 5ms"),
            "{text}"
        );
        assert!(
            text.contains("HcsModifyServiceSettings returned after"),
            "{text}"
        );
        assert!(
            text.contains("container_id=\"c1\""),
            "the caller's span: {text}"
        );
        assert!(text.contains("WARN"), "{text}");
    }

    /// Under the default `warn` level the caller's `info` span is not recorded: the
    /// warning itself names the container, the call and the compute system.
    #[test]
    fn the_warning_names_the_container_at_the_warn_level() {
        let log = CapturedLog::default();
        let subscriber = {
            let log = log.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::WARN)
                .with_writer(move || log.clone())
                .finish()
        };
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("ccg.create", container_id = "c-span").entered();
            let _for = calls_for("c-warn");
            watch(
                HcsOperation::ModifyComputeSystem,
                Some("uvm-1"),
                Duration::from_millis(5),
                || log.until_warned("HcsModifyComputeSystem"),
            );
        });
        let text = log.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in lines {
            assert!(line.contains("WARN"), "{line}");
            assert!(line.contains("container_id=\"c-warn\""), "{line}");
            assert!(line.contains("compute_system=\"uvm-1\""), "{line}");
            assert!(
                line.contains("operation=hcs::ModifyComputeSystem"),
                "{line}"
            );
            assert!(
                !line.contains("c-span"),
                "the info span is not recorded: {line}"
            );
        }
        // The mark ends with its guard.
        assert_eq!(CONTAINER.with(|c| c.borrow().clone()), None);
    }

    #[test]
    fn marks_nest_and_restore() {
        let outer = calls_for("outer");
        {
            let _inner = calls_for("inner");
            assert_eq!(
                CONTAINER.with(|c| c.borrow().clone()).as_deref(),
                Some("inner")
            );
        }
        assert_eq!(
            CONTAINER.with(|c| c.borrow().clone()).as_deref(),
            Some("outer")
        );
        drop(outer);
        assert_eq!(CONTAINER.with(|c| c.borrow().clone()), None);
    }

    #[test]
    fn a_quick_call_logs_nothing() {
        let log = CapturedLog::default();
        let value = tracing::subscriber::with_default(log.subscriber(), || {
            watch(
                HcsOperation::GetServiceProperties,
                None,
                Duration::from_secs(60),
                || "done",
            )
        });
        assert_eq!(value, "done");
        assert_eq!(log.text(), "");
    }

    #[test]
    fn a_panicking_call_does_not_hang_the_watchdog() {
        let outcome = std::panic::catch_unwind(|| {
            watch(
                HcsOperation::GetServiceProperties,
                None,
                Duration::from_secs(3600),
                || panic!("boom"),
            )
        });
        assert!(outcome.is_err());
    }
}
