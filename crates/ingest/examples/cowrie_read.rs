//! Read Cowrie logs and derive reports, without storing them: the source stage's own speed.
//!
//!     cargo run --release -p apiary-ingest --example cowrie_read -- FILE...

use apiary_ingest::cowrie::{reports, Assembler, DeriveOptions, ReadOptions};
use std::time::Instant;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: cowrie_read FILE...");
        std::process::exit(2);
    }
    let started = Instant::now();
    let mut asm = Assembler::new(ReadOptions::default());
    let opts = DeriveOptions::default();
    let (mut sessions, mut derived) = (0u64, 0u64);
    let mut emit = |s: apiary_ingest::cowrie::Session| {
        sessions += 1;
        derived += reports(&s, &opts).reports.len() as u64;
    };
    for f in &files {
        asm.read_path(f.as_ref(), &mut |_| {}, &mut emit).expect("read");
    }
    asm.finish(&mut emit);
    let st = asm.into_stats();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "events {} sessions {} reports {} rejected lines {} in {:.3}s = {:.0} events/s",
        st.events,
        sessions,
        derived,
        st.lines_rejected,
        secs,
        st.events as f64 / secs
    );
}
