//! The heap of Rust plugins compiled to wasm: blocks of fixed sizes recycled through free
//! lists, in front of the system allocator.
//!
//! A plugin allocates and frees the same few sizes over and over, batch after batch: each
//! record's bytes (the host asks the guest for every one of them through `cabi_realloc`), the
//! keys and strings of the JSON values made from them, the output records. The system
//! allocator of `wasm32-wasip2` (wasi-libc's dlmalloc, reached through three calls) spends
//! most of its time on bookkeeping this pattern never needs. [`Heap`] serves every request of
//! at most [`LARGEST_CLASS`] bytes from a free list per size class: a pop to allocate, a
//! push to free, both in a handful of instructions. A class whose list is empty is fed from
//! a chunk taken from the system allocator; bigger requests go to the system allocator.
//!
//! Blocks are never given back to the system allocator or moved to another class: a plugin
//! keeps, per class, the most blocks it ever held at once. That suits plugins, whose memory
//! use repeats from batch to batch; the step's `memory_mb` limit bounds it as before.
//!
//! The SDK installs it as the global allocator of wasm builds (the `heap` feature, on by
//! default; a plugin that brings its own `#[global_allocator]` turns the feature off).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Every block is a multiple of this size and aligned to it.
const GRANULE: usize = 16;
/// Classes up to this size are spaced by [`GRANULE`]; above it, they double.
const FINE_MAX: usize = 256;
/// The largest request served from a size class; bigger ones go to the system allocator.
pub const LARGEST_CLASS: usize = 16 << 10;
/// Fine classes (16, 32, .. 256), then doubling ones (512, .. 16 KiB).
const CLASSES: usize = FINE_MAX / GRANULE + (LARGEST_CLASS / FINE_MAX).trailing_zeros() as usize;
/// What the heap takes from the system allocator when a class needs blocks.
const CHUNK: usize = 128 << 10;

/// The size class of a request of `size` bytes, if it has one.
fn class_of(size: usize) -> Option<usize> {
    if size <= FINE_MAX {
        Some(size.max(1).div_ceil(GRANULE) - 1)
    } else if size <= LARGEST_CLASS {
        let doublings = (size.next_power_of_two() / FINE_MAX).trailing_zeros() as usize;
        Some(FINE_MAX / GRANULE - 1 + doublings)
    } else {
        None
    }
}

/// The size of the blocks of `class`.
fn class_size(class: usize) -> usize {
    let fine = FINE_MAX / GRANULE;
    if class < fine { (class + 1) * GRANULE } else { FINE_MAX << (class + 1 - fine) }
}

/// The class a request is served from: none if it is too big or needs a stricter alignment
/// than [`GRANULE`].
fn class_for(layout: Layout) -> Option<usize> {
    if layout.align() > GRANULE { None } else { class_of(layout.size()) }
}

struct State {
    /// The first free block of each class; each free block holds the address of the next.
    free: [*mut u8; CLASSES],
    /// The part of the current chunk not yet cut into blocks.
    next: *mut u8,
    end: *mut u8,
}

/// A size-class allocator in front of `A` (the system allocator by default). Not thread-safe:
/// it is `Sync`, and so usable as the global allocator, only on single-threaded wasm.
pub struct Heap<A: GlobalAlloc = System> {
    state: UnsafeCell<State>,
    backing: A,
}

// SAFETY: wasm32 without the `atomics` feature has a single thread, so no two calls can
// touch `state` at once.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<A: GlobalAlloc> Sync for Heap<A> {}

impl Heap<System> {
    /// An empty heap over the system allocator.
    pub const fn new() -> Self {
        Heap::with_backing(System)
    }
}

impl Default for Heap<System> {
    fn default() -> Self {
        Heap::new()
    }
}

impl<A: GlobalAlloc> Heap<A> {
    /// An empty heap taking its chunks and big blocks from `backing`.
    pub const fn with_backing(backing: A) -> Self {
        Heap {
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                next: ptr::null_mut(),
                end: ptr::null_mut(),
            }),
            backing,
        }
    }

    /// A block of `class`: from its free list, else cut from the current chunk, else from a
    /// new chunk. Null if the backing allocator has no memory left.
    ///
    /// # Safety
    /// No other call on this heap may run at the same time.
    unsafe fn take(&self, class: usize) -> *mut u8 {
        // SAFETY: single-threaded use is the caller's promise; no other reference into
        // `state` is alive during this call.
        let state = unsafe { &mut *self.state.get() };
        if let Some(block) = state.pop(class) {
            return block;
        }
        let size = class_size(class);
        if (state.end as usize) - (state.next as usize) < size {
            // SAFETY: CHUNK is non-zero and GRANULE a power of two.
            let chunk = unsafe { self.backing.alloc(Layout::from_size_align_unchecked(CHUNK, GRANULE)) };
            if chunk.is_null() {
                return chunk;
            }
            state.retire_chunk();
            state.next = chunk;
            // SAFETY: the chunk is CHUNK bytes long.
            state.end = unsafe { chunk.add(CHUNK) };
        }
        let block = state.next;
        // SAFETY: at least `size` bytes are left in the chunk (checked or refilled above).
        state.next = unsafe { block.add(size) };
        block
    }

    /// Puts `block` back on the free list of `class`.
    ///
    /// # Safety
    /// `block` came from `take(class)` and nothing uses it any more; no other call on this
    /// heap runs at the same time.
    unsafe fn give(&self, block: *mut u8, class: usize) {
        // SAFETY: the caller's promises; a block of `class` is `class_size(class)` bytes.
        unsafe { (*self.state.get()).push(block, class) };
    }
}

impl State {
    /// The first free block of `class`, taken off its list.
    fn pop(&mut self, class: usize) -> Option<*mut u8> {
        let head = self.free[class];
        if head.is_null() {
            return None;
        }
        // SAFETY: a free block holds the address of the next one (written by `push`); it is
        // at least GRANULE bytes and aligned to GRANULE.
        self.free[class] = unsafe { head.cast::<*mut u8>().read() };
        Some(head)
    }

    /// Puts `block` on the list of `class`.
    ///
    /// # Safety
    /// `block` is free, at least `class_size(class)` bytes, and aligned to GRANULE.
    unsafe fn push(&mut self, block: *mut u8, class: usize) {
        // SAFETY: the caller's promise: big and aligned enough for a pointer.
        unsafe { block.cast::<*mut u8>().write(self.free[class]) };
        self.free[class] = block;
    }

    /// Cuts what is left of the current chunk into the biggest blocks that fit, so that
    /// nothing of it is lost when a new chunk replaces it.
    fn retire_chunk(&mut self) {
        let (mut rest, end) = (self.next, self.end);
        loop {
            let left = (end as usize) - (rest as usize);
            let Some(fit) = (0..CLASSES).rev().find(|&c| class_size(c) <= left) else { break };
            // SAFETY: `rest` to `end` is the unused, GRANULE-aligned tail of the chunk, and
            // `class_size(fit)` bytes of it are left.
            unsafe {
                self.push(rest, fit);
                rest = rest.add(class_size(fit));
            }
        }
    }
}

// SAFETY: every block handed out is at least `layout.size()` bytes, aligned to GRANULE (every
// class size is a multiple of it, and chunks are aligned to it) or, for layouts without a
// class, comes from `backing` with the caller's layout. A block goes back to the class its
// layout maps to, which is the class it came from since Rust deallocates with the layout it
// allocated with.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Heap<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_for(layout) {
            // SAFETY: GlobalAlloc's contract (one thread at a time here, see `Sync`).
            Some(class) => unsafe { self.take(class) },
            None => unsafe { self.backing.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class_for(layout) {
            Some(class) => {
                // SAFETY: as `alloc`; a block is at least `layout.size()` bytes.
                let block = unsafe { self.take(class) };
                if !block.is_null() {
                    unsafe { block.write_bytes(0, layout.size()) };
                }
                block
            }
            None => unsafe { self.backing.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match class_for(layout) {
            // SAFETY: `block` came from `take(class)` with this same layout.
            Some(class) => unsafe { self.give(block, class) },
            None => unsafe { self.backing.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: GlobalAlloc's contract: `layout.align()` with `new_size` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_for(layout), class_for(new_layout)) {
            (Some(old), Some(new)) if old == new => block,
            (None, None) => unsafe { self.backing.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: a new block, the common prefix copied, the old one freed.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

/// The global allocator of wasm builds of plugins.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics"), feature = "heap"))]
#[global_allocator]
static HEAP: Heap = Heap::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_size_up_to_the_largest_and_no_more() {
        assert_eq!(class_of(0), Some(0));
        assert_eq!(class_of(LARGEST_CLASS + 1), None);
        let mut last = 0;
        for size in 1..=LARGEST_CLASS {
            let class = class_of(size).unwrap_or(usize::MAX);
            assert!(class < CLASSES, "size {size} -> class {class}");
            assert!(class_size(class) >= size, "size {size} in class of {}", class_size(class));
            assert!(class >= last, "classes grow with size");
            // The class is the smallest that fits.
            assert!(class == 0 || class_size(class - 1) < size, "size {size}: a smaller class fits");
            assert_eq!(class_size(class) % GRANULE, 0);
            last = class;
        }
        assert_eq!(class_size(CLASSES - 1), LARGEST_CLASS);
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// Live blocks never overlap, keep their contents, and are aligned; freed blocks are
    /// reused. Sizes cover fine, doubling and system-allocated requests.
    #[test]
    fn blocks_are_disjoint_aligned_and_reused() {
        let heap = Heap::new();
        let sizes = [1, 15, 16, 17, 100, 256, 257, 700, 4096, 16 << 10, (16 << 10) + 1, 200_000];
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        for round in 0..3u8 {
            for (i, &size) in sizes.iter().cycle().take(600).enumerate() {
                let l = layout(size, if i % 3 == 0 { 8 } else { 1 });
                let p = unsafe { heap.alloc(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % l.align(), 0);
                let fill = round.wrapping_mul(31).wrapping_add(i as u8);
                unsafe { p.write_bytes(fill, size) };
                live.push((p, l, fill));
            }
            let mut spans: Vec<(usize, usize)> =
                live.iter().map(|(p, l, _)| (*p as usize, *p as usize + l.size())).collect();
            spans.sort_unstable();
            assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "two live blocks overlap");
            for (p, l, fill) in &live {
                let bytes = unsafe { std::slice::from_raw_parts(*p, l.size()) };
                assert!(bytes.iter().all(|b| b == fill), "a block lost its contents");
            }
            // Free every other block, keep the rest for the next round.
            let (gone, kept): (Vec<_>, Vec<_>) =
                live.drain(..).enumerate().partition(|(i, _)| i % 2 == 0);
            for (_, (p, l, _)) in gone {
                unsafe { heap.dealloc(p, l) };
            }
            live = kept.into_iter().map(|(_, b)| b).collect();
        }
        // A freed small block is handed out again.
        let l = layout(48, 8);
        let p = unsafe { heap.alloc(l) };
        unsafe { heap.dealloc(p, l) };
        assert_eq!(unsafe { heap.alloc(l) }, p);
        for (p, l, _) in live {
            unsafe { heap.dealloc(p, l) };
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_to_the_system() {
        let heap = Heap::new();
        let mut l = layout(10, 1);
        let mut p = unsafe { heap.alloc(l) };
        unsafe { p.copy_from_nonoverlapping(b"0123456789".as_ptr(), 10) };
        for new_size in [12, 16, 200, 5000, 100_000, 300_000, 40, 10] {
            p = unsafe { heap.realloc(p, l, new_size) };
            assert!(!p.is_null());
            l = layout(new_size, 1);
            let bytes = unsafe { std::slice::from_raw_parts(p, 10) };
            assert_eq!(bytes, b"0123456789", "after realloc to {new_size}");
        }
        // Growing within a class keeps the block.
        let q = unsafe { heap.realloc(p, l, 16) };
        assert_eq!(q, p);
        unsafe { heap.dealloc(q, layout(16, 1)) };
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        let heap = Heap::new();
        let l = layout(64, 8);
        let p = unsafe { heap.alloc(l) };
        unsafe { p.write_bytes(0xAB, 64) };
        unsafe { heap.dealloc(p, l) };
        let z = unsafe { heap.alloc_zeroed(l) };
        assert_eq!(z, p);
        assert!(unsafe { std::slice::from_raw_parts(z, 64) }.iter().all(|&b| b == 0));
        unsafe { heap.dealloc(z, l) };
    }

    #[test]
    fn alignments_above_the_granule_go_to_the_system() {
        let heap = Heap::new();
        let l = layout(64, 4096);
        let p = unsafe { heap.alloc(l) };
        assert_eq!(p as usize % 4096, 0);
        unsafe { heap.dealloc(p, l) };
    }
}
