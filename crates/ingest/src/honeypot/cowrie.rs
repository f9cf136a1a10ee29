//! Cowrie as a [`Source`]: the session assembler of [`crate::cowrie`], each session turned
//! into reports as it closes. (`apiary import cowrie` also stores the sessions themselves.)

use super::{ProblemKind, ReadOptions, ReadStats, Source};
use crate::cowrie::{reports, Assembler, DeriveOptions, Session};
use crate::Report;

pub struct Cowrie {
    asm: Assembler,
    derive: DeriveOptions,
}

pub fn new(opts: ReadOptions) -> Box<dyn Source> {
    Box::new(Cowrie { asm: Assembler::new(opts), derive: DeriveOptions::default() })
}

impl Cowrie {
    fn emit(asm: &mut Assembler, derive: &DeriveOptions, s: Session, out: &mut dyn FnMut(Report)) {
        let d = reports(&s, derive);
        let max = asm.max_problems();
        for (what, value, why) in d.rejected {
            let msg = format!("session {} ({}): `{what}` {value:?} refused: {why}", s.session, s.sensor);
            asm.stats_mut().problem(max, &s.first_seen_at.0, s.first_seen_at.1, ProblemKind::RejectedValue, msg);
        }
        d.reports.into_iter().for_each(out);
    }
}

impl Source for Cowrie {
    fn push_line(&mut self, file: &str, default_sensor: &str, number: u64, bytes: &[u8], complete: bool, out: &mut dyn FnMut(Report)) {
        let mut closed = Vec::new();
        self.asm.push_line(file, default_sensor, number, bytes, complete, &mut |s| closed.push(s));
        for s in closed {
            Self::emit(&mut self.asm, &self.derive, s, out);
        }
    }

    fn finish(&mut self, out: &mut dyn FnMut(Report)) {
        let mut rest = Vec::new();
        self.asm.finish(&mut |s| rest.push(s));
        for s in rest {
            Self::emit(&mut self.asm, &self.derive, s, out);
        }
    }

    fn stats(&self) -> &ReadStats {
        self.asm.stats()
    }

    fn stats_mut(&mut self) -> &mut ReadStats {
        self.asm.stats_mut()
    }

    fn into_stats(self: Box<Self>) -> ReadStats {
        self.asm.into_stats()
    }
}
