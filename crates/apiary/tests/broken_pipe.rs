//! `apiary … | head -1`: a reader that closes standard output early must not make the CLI panic
//! ("failed printing to stdout: Broken pipe"); the process stops quietly, as `cat` does. A
//! broken *socket* must still be reported as an error, not end the process silently.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn command(args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apiary"));
    for (k, _) in std::env::vars() {
        if k.starts_with("APIARY_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).stdin(Stdio::null());
    cmd
}

#[test]
fn a_reader_that_closes_early_ends_the_command_quietly() {
    // Far more than a pipe buffer (64 KiB), so the command is still writing when the reader leaves.
    let mut args = vec!["parse".to_string()];
    args.extend((0..4000).map(|i| format!("10.{}.{}.1", i / 256, i % 256)));
    let mut child = command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("10.0.0.1"), "{first}");
    // The reader is dropped here: the pipe's read end is closed, like `head -1` exiting.
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "apiary panicked on a closed pipe:\n{err}");
    assert!(err.is_empty(), "nothing to say on stderr:\n{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(status.success() || status.signal() == Some(13), "{status:?}");
    }
    #[cfg(not(unix))]
    let _ = status;
}

#[test]
fn a_broken_connection_to_the_hub_is_reported_not_silent() {
    // A "hub" that reads a little of the upload, then closes with data unread (a reset).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hub = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.txt");
    let values: Vec<String> = (0..5000).map(|i| format!("host-{i}.scanner.example")).collect();
    std::fs::write(&file, values.join("\n")).unwrap();
    let args: Vec<String> =
        ["publish", "alice/feed", "--file", file.to_str().unwrap(), "--hub", &hub, "--token", "t"].map(String::from).to_vec();
    let o = command(&args).output().unwrap();
    server.join().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(o.status.signal(), None, "killed by a signal instead of reporting:\n{err}");
    }
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("error: publish to alice/feed failed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
