//! Allocator probe: each record, `process` lists the directory named in its config (the host
//! returns each entry's name in memory that wasi-libc then frees with `free()`) between
//! allocations of many sizes, and checks that the blocks it keeps across calls are intact.
use autoflow_plugin_sdk::*;
use serde::Deserialize;

/// The step config: the directory to list.
#[derive(Deserialize)]
pub struct Config {
    dir: String,
}

/// The directory, and the blocks kept from earlier records, each filled with its pattern.
pub struct Churn {
    dir: String,
    kept: Vec<(usize, Vec<u8>)>,
    made: usize,
}

/// The content of block number `n` of `len` bytes.
fn pattern(n: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (n.wrapping_mul(31).wrapping_add(i) % 251) as u8)
        .collect()
}

/// Block sizes in turn: the heap's size classes and sizes past them.
const SIZES: [usize; 9] = [8, 24, 100, 300, 1000, 5000, 16_000, 20_000, 70_000];

impl Transform for Churn {
    type Config = Config;
    fn metadata() -> Metadata {
        Metadata::new(
            "heap-churn",
            "0.1.0",
            "Lists a directory between allocations (test guest)",
        )
    }
    fn open(config: Config) -> Result<Self> {
        Ok(Churn {
            dir: config.dir,
            kept: Vec::new(),
            made: 0,
        })
    }
    fn process(&mut self, _: Record, out: &mut Output) -> Result<()> {
        let entries = std::fs::read_dir(&self.dir)
            .and_then(|d| {
                d.map(|e| e.map(|e| e.file_name()))
                    .collect::<std::io::Result<Vec<_>>>()
            })
            .map_err(|e| Error::Fatal(format!("list {}: {e}", self.dir)))?;
        for _ in 0..20 {
            let n = self.made;
            self.made += 1;
            let block = pattern(n, SIZES[n % SIZES.len()]);
            if n.is_multiple_of(3) {
                self.kept.push((n, block));
            }
        }
        if self.kept.len() > 300 {
            self.kept.drain(..100);
        }
        for (n, block) in &self.kept {
            if *block != pattern(*n, block.len()) {
                return Err(Error::Fatal(format!(
                    "heap corrupted: block {n} of {} bytes was overwritten",
                    block.len()
                )));
            }
        }
        out.emit(Record::new(entries.len().to_string()));
        Ok(())
    }
}
export_transform!(Churn);
