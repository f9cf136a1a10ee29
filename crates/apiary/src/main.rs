//! `apiary`: one binary for the hub, its admin commands and its client commands.
//! Thin: argument parsing here, the work in the library crates.

mod cmd;

use clap::Parser;

fn main() -> std::process::ExitCode {
    stdout_pipe::exit_quietly_when_closed();
    let cli = cmd::Cli::parse();
    cmd::run(cli)
}

/// `apiary … | head -1`: when the reader of standard output goes away, stop the way `cat` does
/// (killed by SIGPIPE, no message), instead of Rust's "failed printing to stdout" panic, for
/// every command at once.
///
/// Not simply the default SIGPIPE disposition: that would also kill the process when a *socket*
/// write fails (a hub that answers 413 and closes mid-upload), where the command must report the
/// error instead. So the handler stops the process only when standard output is the broken
/// pipe; otherwise it returns and the failing write reports EPIPE as usual.
#[cfg(unix)]
mod stdout_pipe {
    extern "C" fn on_sigpipe(_: libc::c_int) {
        let mut fd = libc::pollfd { fd: libc::STDOUT_FILENO, events: libc::POLLOUT, revents: 0 };
        // SAFETY: poll, signal and raise are async-signal-safe; `fd` outlives the call.
        unsafe {
            if libc::poll(&mut fd, 1, 0) == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                // Delivered (and fatal) as soon as this handler returns.
                libc::raise(libc::SIGPIPE);
            }
        }
    }

    pub fn exit_quietly_when_closed() {
        // SAFETY: installs a handler that only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigpipe as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGPIPE, &action, std::ptr::null_mut());
        }
    }
}

#[cfg(not(unix))]
mod stdout_pipe {
    pub fn exit_quietly_when_closed() {}
}
