//! Process-wide setup every command shares: the tokio runtime, the open-file limit, logging, exit statuses.

/// Exit status when fleetop could not run at all (bad inventory, bad flags).
pub const EXIT_CANNOT_RUN: i32 = 3;

/// The exit status of a command that ended with `status`: [`EXIT_CANNOT_RUN`] instead when its output could
/// not be written (a full disk must not read as success to cron or a monitoring system), said on stderr.
/// A closed pipe is not a failure: the reader went away.
pub fn exit_status(status: i32) -> i32 {
    // Whatever is still buffered is written now, so its error counts too.
    crate::text::stdout_written(std::io::Write::flush(&mut std::io::stdout()));
    match crate::text::stdout_failure() {
        Some(why) => {
            crate::text::warn(&format!("cannot write the output (stdout): {why}"));
            EXIT_CANNOT_RUN
        }
        None => status,
    }
}

/// The single-threaded runtime the commands run on; `None` (after saying why on stderr) if it cannot start.
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => Some(r),
        Err(e) => {
            crate::text::warn(&format!("cannot start the runtime: {e}"));
            None
        }
    }
}

/// Raises the open-file limit to its hard maximum: one socket per node (two through a jump host) passes
/// the common default of 1,024 on the reference fleet.
pub(crate) fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::warn!("could not raise the open-file limit to {}", limit.rlim_max);
            }
        }
    }
}

/// An action ran and some node failed (or its outcome could not be recorded).
pub(crate) const EXIT_FAILED: i32 = 1;
/// An action was refused before anything ran (guards, read-only, the audit log).
pub(crate) const EXIT_REFUSED: i32 = 2;

/// Logs go to stderr (level from `FLEETOP_LOG`, default warn), never onto the data on stdout; while the
/// TUI owns the terminal they go to `$XDG_STATE_HOME/fleetop/fleetop.log` instead.
pub(crate) fn init_tracing(to_file: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLEETOP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if !to_file {
        let _ = builder.with_writer(std::io::stderr).try_init();
        return;
    }
    let file = crate::dirs::state().and_then(|d| {
        std::fs::create_dir_all(&d).ok()?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("fleetop.log"))
            .ok()
    });
    if let Some(file) = file {
        let _ = builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    }
}
