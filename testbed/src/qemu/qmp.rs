//! A minimal client of QEMU's machine protocol (QMP): JSON lines over a socket.
//!
//! The testbed uses it for what QEMU tells only there: that the guest stopped (a
//! triple fault makes QEMU's `-action reboot=shutdown,shutdown=pause` pause it; an
//! emulation failure stops it), and the guest's registers (`info registers` through
//! `human-monitor-command`) for the report. Events arriving before an answer are kept.

use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{json, Value};

/// A connected QMP session.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    events: Vec<Value>,
}

/// What a QMP event means for the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestStop {
    /// The guest reset itself (a triple fault); QEMU paused it.
    Reset,
    /// QEMU stopped the guest for another reason (e.g. an emulation failure); the
    /// event's name and data.
    Stopped(String),
}

impl Qmp {
    /// Reads the greeting and enters command mode. `stream` is the testbed's end of the
    /// socket QEMU's monitor uses.
    pub fn connect(stream: UnixStream, timeout: Duration) -> io::Result<Self> {
        stream.set_read_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
        };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            return Err(io::Error::other(format!(
                "QMP: unexpected greeting {greeting}"
            )));
        }
        qmp.execute("qmp_capabilities", Value::Null)?;
        Ok(qmp)
    }

    /// How long a read may wait for QEMU.
    pub fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(Some(timeout))
    }

    /// The socket, for polling.
    pub fn fd(&self) -> RawFd {
        self.reader.get_ref().as_raw_fd()
    }

    /// Reads one message. QEMU closing the monitor is `UnexpectedEof`, also when the
    /// kernel reports it as a reset (QEMU ended with a command of ours unread).
    fn read(&mut self) -> io::Result<Value> {
        let closed =
            || io::Error::new(io::ErrorKind::UnexpectedEof, "QMP: QEMU closed the monitor");
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Err(closed()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(closed()),
            Err(e) => return Err(e),
        }
        serde_json::from_str(&line)
            .map_err(|e| io::Error::other(format!("QMP: not JSON ({e}): {}", line.trim())))
    }

    /// Runs `command` and returns its `return` value; events read meanwhile are kept
    /// for [`Qmp::stop_event`].
    pub fn execute(&mut self, command: &str, arguments: Value) -> io::Result<Value> {
        let mut request = json!({ "execute": command });
        if !arguments.is_null() {
            request["arguments"] = arguments;
        }
        writeln!(self.writer, "{request}")?;
        loop {
            let v = self.read()?;
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(io::Error::other(format!("QMP {command}: {e}")));
            }
            self.events.push(v);
        }
    }

    /// Reads what QEMU sent (call when the socket is readable) and returns whether the
    /// guest has stopped, and how.
    pub fn poll_events(&mut self) -> io::Result<Option<GuestStop>> {
        let v = self.read()?;
        self.events.push(v);
        Ok(self.stop_event())
    }

    /// The first kept event that means the guest no longer runs.
    pub fn stop_event(&self) -> Option<GuestStop> {
        self.events.iter().find_map(|e| {
            let name = e.get("event")?.as_str()?;
            match name {
                "SHUTDOWN" if e["data"]["reason"] == "guest-reset" => Some(GuestStop::Reset),
                "STOP" | "GUEST_PANICKED" => Some(GuestStop::Stopped(name.to_string())),
                _ => None,
            }
        })
    }

    /// The guest's registers as QEMU's `info registers` prints them.
    pub fn registers(&mut self) -> io::Result<String> {
        let r = self.execute(
            "human-monitor-command",
            json!({ "command-line": "info registers" }),
        )?;
        Ok(r.as_str().unwrap_or_default().replace('\r', ""))
    }

    /// Asks QEMU to quit (it exits; the socket closes).
    pub fn quit(&mut self) -> io::Result<()> {
        writeln!(self.writer, "{}", json!({ "execute": "quit" }))
    }
}

/// The general-purpose, instruction and control registers of an `info registers`
/// dump: its lines up to the descriptor tables, without segment and FPU state.
pub fn brief_registers(dump: &str) -> Vec<String> {
    dump.lines()
        .map(str::trim_end)
        .filter(|l| {
            [
                "RAX=", "RSI=", "R8 =", "R12=", "RIP=", "CR0=", "EFER=", "EAX=", "ESI=", "EIP=",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// A fake QEMU: greets, answers `qmp_capabilities`, sends an event, answers the
    /// register query.
    #[test]
    fn a_session_keeps_events_and_answers_commands() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let qemu = thread::spawn(move || {
            let mut r = BufReader::new(theirs.try_clone().unwrap());
            let mut w = theirs;
            let mut line = String::new();
            writeln!(w, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("qmp_capabilities"));
            writeln!(w, r#"{{"return": {{}}}}"#).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("info registers"));
            writeln!(
                w,
                r#"{{"event": "SHUTDOWN", "data": {{"guest": true, "reason": "guest-reset"}}}}"#
            )
            .unwrap();
            writeln!(
                w,
                r#"{{"return": "CPU#0\r\nRAX=0000000000000001 RBX=0\r\nES =0010\r\nRIP=0000000000200000 RFL=00000002\r\n"}}"#
            )
            .unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("quit"));
        });
        let mut q = Qmp::connect(ours, Duration::from_secs(5)).unwrap();
        assert_eq!(q.stop_event(), None);
        let regs = q.registers().unwrap();
        assert!(regs.contains("RAX=0000000000000001") && !regs.contains('\r'));
        assert_eq!(q.stop_event(), Some(GuestStop::Reset));
        assert_eq!(
            brief_registers(&regs),
            [
                "RAX=0000000000000001 RBX=0",
                "RIP=0000000000200000 RFL=00000002"
            ]
        );
        q.quit().unwrap();
        qemu.join().unwrap();
    }

    #[test]
    fn a_closed_or_silent_monitor_is_an_error() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        drop(theirs);
        let e = Qmp::connect(ours, Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let (ours, _theirs) = UnixStream::pair().unwrap();
        assert!(Qmp::connect(ours, Duration::from_millis(50)).is_err());
    }

    /// QEMU ending with a command of ours unread makes the kernel report a reset, not an
    /// end of file; both mean the monitor closed (what `Machine::start` relies on when a
    /// guest ends QEMU before `cont` is answered).
    #[test]
    fn a_monitor_closed_with_our_command_unread_is_an_end_of_file() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut r = BufReader::new(theirs.try_clone().unwrap());
        let mut w = theirs;
        writeln!(w, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
        let (sent, wait) = std::sync::mpsc::channel();
        let qemu = thread::spawn(move || {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            writeln!(w, r#"{{"return": {{}}}}"#).unwrap();
            // Close once the next command is in the socket, without reading it.
            wait.recv().unwrap();
        });
        let mut q = Qmp::connect(ours, Duration::from_secs(5)).unwrap();
        writeln!(q.writer, r#"{{"execute": "cont"}}"#).unwrap();
        sent.send(()).unwrap();
        qemu.join().unwrap();
        let e = q.read().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }
}
