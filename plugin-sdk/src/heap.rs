//! The memory allocator of Rust plugins on wasm: small blocks come from size classes carved out
//! of 16 KiB chunks; big blocks, and every block this heap did not hand out, go to the system
//! allocator (wasi-libc's malloc). Also the component's `cabi_realloc`, which decides whose
//! memory the host's lists land in.
//!
//! Why not just wasi-libc's dlmalloc: a record through a transform allocates and frees dozens of
//! small blocks (serde_json values, strings, map entries), and dlmalloc's bookkeeping (headers,
//! bins, coalescing) was a sixth of the plugins' time. Here a small allocation pops a free list
//! or bumps a pointer, and a free pushes the block back on its class's list: Rust's `dealloc`
//! says the size, so blocks need no header.
//!
//! Why blocks of others must still work: the host writes every list it passes to the guest
//! into memory it gets from `cabi_realloc`, both the arguments of an export call (the records
//! of a batch, which the plugin's Rust code owns and frees through this heap) and the results
//! of an import call, some of which wasi-libc frees with `free()` (preopen names, the
//! environment, directory entries): a block of this heap given to `free()` would corrupt
//! dlmalloc. So [`cabi_realloc`] takes memory from this heap only between export calls, when
//! the caller can only be the host passing the next call's arguments ([`ExportCall`] marks the
//! calls), and from malloc otherwise; and the heap hands any block outside its chunks, which a
//! bitmap of the chunks tells in one load, back to the system allocator.
//!
//! Freed small blocks stay in their class (nothing is given back to malloc), so a plugin's peak
//! memory is at most the sum of its peaks per class; plugin instances are short-lived.
#![allow(unsafe_code)] // A global allocator is unsafe by definition; each `unsafe` says why it holds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// The memory the heap takes from the system allocator at a time, aligned to its size.
pub const CHUNK: usize = 16 * 1024;
/// The biggest block kept in a size class; bigger ones are the system allocator's.
pub const MAX_SMALL: usize = 4 * 1024;
/// The alignment every size-class block has (all class sizes are multiples of it).
pub const BLOCK_ALIGN: usize = 16;
/// The number of size classes: 16 to 128 bytes in steps of 16, then four per doubling.
const CLASSES: usize = 28;
/// The chunks the ownership bitmap covers: 2^18 chunks of 16 KiB, all of wasm32's 4 GiB.
const WINDOW: usize = 1 << 18;

/// The size class of a small block of `size` bytes (`1..=MAX_SMALL`).
#[inline]
fn class_of(size: usize) -> usize {
    if size <= 128 {
        return size.max(1).div_ceil(16) - 1;
    }
    let s = size - 1;
    let log = (usize::BITS - 1 - s.leading_zeros()) as usize;
    8 + (log - 7) * 4 + ((s >> (log - 2)) & 3)
}

/// The size of the blocks of class `class`.
const fn class_size(class: usize) -> usize {
    if class < 8 {
        return (class + 1) * 16;
    }
    let log = 7 + (class - 8) / 4;
    (5 + (class - 8) % 4) << (log - 2)
}

/// The heap's mutable state.
struct State {
    /// Per class, the first free block; each free block holds the next in its first word.
    free: [*mut u8; CLASSES],
    /// The unused rest of the newest chunk: `[cursor, end)`.
    cursor: usize,
    end: usize,
    /// Chunk index 0 of the bitmap (always 0 on wasm32, where the window is the whole memory).
    base: usize,
    /// Bit `i` is set when chunk `base + i * CHUNK` is the heap's.
    owned: [u32; WINDOW / 32],
    /// Whether [`first_chunk`] has been taken.
    first_taken: bool,
}

/// The first chunk, in the module's zeroed static memory (on wasm): a fresh instance's first
/// allocations then make wasi-libc's malloc neither align a chunk nor grow the memory, which
/// made a fresh instance's `describe()` several µs slower (`runtime/benches/instantiate.rs`).
#[cfg(target_arch = "wasm32")]
#[repr(C, align(16384))]
struct FirstChunk(UnsafeCell<[u8; CHUNK]>);
#[cfg(target_arch = "wasm32")]
const _: () = assert!(align_of::<FirstChunk>() == CHUNK);

// SAFETY: one thread (see `Heap`); the heap hands the chunk's blocks out once.
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for FirstChunk {}

#[cfg(target_arch = "wasm32")]
static FIRST_CHUNK: FirstChunk = FirstChunk(UnsafeCell::new([0; CHUNK]));

/// The static first chunk; null natively, where every chunk is the system allocator's.
fn first_chunk() -> *mut u8 {
    #[cfg(target_arch = "wasm32")]
    return FIRST_CHUNK.0.get().cast();
    #[cfg(not(target_arch = "wasm32"))]
    ptr::null_mut()
}

/// The allocator: see the module documentation.
pub struct Heap {
    state: UnsafeCell<State>,
}

// SAFETY: wasm32-wasip2 components have one thread, so the state is never touched from two
// threads at once. (Natively the heap is only built by its unit tests, never shared.)
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for Heap {}

impl Heap {
    /// An empty heap; it takes its first chunk at the first small allocation.
    pub const fn new() -> Self {
        Heap {
            state: UnsafeCell::new(State {
                free: [ptr::null_mut(); CLASSES],
                cursor: 0,
                end: 0,
                base: usize::MAX,
                owned: [0; WINDOW / 32],
                first_taken: false,
            }),
        }
    }

    /// Whether `layout` is served from the size classes.
    #[inline]
    fn is_small(layout: Layout) -> bool {
        layout.size() <= MAX_SMALL && layout.align() <= BLOCK_ALIGN
    }

    /// Whether `block` lies in one of the heap's chunks.
    #[inline]
    fn owns(state: &State, block: *mut u8) -> bool {
        let index = (block as usize).wrapping_sub(state.base) / CHUNK;
        index < WINDOW && state.owned[index / 32] & (1 << (index % 32)) != 0
    }

    /// A block of class `class`, from its free list or else from the newest chunk.
    ///
    /// # Safety
    /// The caller has the state to itself (one thread).
    #[inline]
    unsafe fn take(state: &mut State, class: usize) -> *mut u8 {
        let head = state.free[class];
        if !head.is_null() {
            // SAFETY: a free block's first word holds the next free block (see `give`).
            state.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = class_size(class);
        if state.end - state.cursor < size && !unsafe { Self::grow(state) } {
            return ptr::null_mut();
        }
        let block = state.cursor as *mut u8;
        state.cursor += size;
        block
    }

    /// Puts `block` of class `class` on its free list.
    ///
    /// # Safety
    /// `block` is a block of the heap's of that class that nobody uses any more.
    #[inline]
    unsafe fn give(state: &mut State, class: usize, block: *mut u8) {
        // SAFETY: the block is at least 16 bytes and 16-aligned, and nobody else uses it.
        unsafe { block.cast::<*mut u8>().write(state.free[class]) };
        state.free[class] = block;
    }

    /// Takes a new chunk (the static first one, then the system allocator's); the rest of the
    /// old one is cut into blocks of the biggest classes that fit. False when there is no memory
    /// left (or, natively, the chunk lies outside the bitmap's window).
    #[cold]
    unsafe fn grow(state: &mut State) -> bool {
        // SAFETY: CHUNK is a non-zero power of two.
        let layout = unsafe { Layout::from_size_align_unchecked(CHUNK, CHUNK) };
        let mut chunk = ptr::null_mut();
        if !state.first_taken {
            state.first_taken = true;
            chunk = first_chunk();
        }
        if chunk.is_null() {
            // SAFETY: the layout is not zero-sized.
            chunk = unsafe { System.alloc(layout) };
        }
        if chunk.is_null() {
            return false;
        }
        if state.base == usize::MAX {
            state.base = if cfg!(target_pointer_width = "32") {
                0
            } else {
                (chunk as usize).saturating_sub(WINDOW / 2 * CHUNK)
            };
        }
        let index = (chunk as usize).wrapping_sub(state.base) / CHUNK;
        if index >= WINDOW {
            // SAFETY: allocated just above with this layout.
            unsafe { System.dealloc(chunk, layout) };
            return false;
        }
        while state.end - state.cursor >= class_size(0) {
            let rest = state.end - state.cursor;
            let class = (0..CLASSES)
                .rev()
                .find(|&c| class_size(c) <= rest)
                .unwrap_or(0);
            // SAFETY: the rest of the old chunk is the heap's and unused.
            unsafe { Self::give(state, class, state.cursor as *mut u8) };
            state.cursor += class_size(class);
        }
        state.owned[index / 32] |= 1 << (index % 32);
        state.cursor = chunk as usize;
        state.end = chunk as usize + CHUNK;
        true
    }
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: small blocks are handed out once until freed (free lists and the bump cursor never
// overlap), are at least as big and as aligned as asked; everything else is `System`'s.
unsafe impl GlobalAlloc for Heap {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::is_small(layout) {
            // SAFETY: the caller's layout is valid and not zero-sized.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: one thread; the state is not borrowed elsewhere.
        let state = unsafe { &mut *self.state.get() };
        let block = unsafe { Self::take(state, class_of(layout.size())) };
        if block.is_null() {
            // SAFETY: as above; the system allocator may still have memory the chunk did not.
            return unsafe { System.alloc(layout) };
        }
        block
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: one thread; the state is not borrowed elsewhere.
        let state = unsafe { &mut *self.state.get() };
        if Self::owns(state, block) {
            // SAFETY: the block is the heap's, of the class its layout says, and freed.
            unsafe { Self::give(state, class_of(layout.size()), block) };
        } else {
            // SAFETY: not the heap's, so the system allocator's (see the module docs).
            unsafe { System.dealloc(block, layout) };
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::is_small(layout) {
            // SAFETY: the caller's layout is valid and not zero-sized.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: as in `alloc`; the block has at least `layout.size()` bytes.
        unsafe {
            let block = self.alloc(layout);
            if !block.is_null() {
                ptr::write_bytes(block, 0, layout.size());
            }
            block
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: one thread; the state is not borrowed elsewhere (and not across the calls).
        let owned = Self::owns(unsafe { &*self.state.get() }, block);
        if !owned {
            // SAFETY: the system allocator's block, with the caller's valid arguments.
            return unsafe { System.realloc(block, layout, new_size) };
        }
        let old = class_of(layout.size());
        if new_size <= MAX_SMALL && new_size > 0 && class_of(new_size) == old {
            return block;
        }
        // SAFETY: the caller guarantees that the new layout is valid; the old block has
        // `layout.size()` bytes, the new one `new_size`, and they do not overlap.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            moved
        }
    }
}

/// Whether the guest is between two export calls (see the module documentation). False until
/// the first call has run, because wasi-libc's constructors run at its start.
static IDLE: AtomicBool = AtomicBool::new(false);

/// One export call of the plugin, from its start to its end: while it lasts, lists the host
/// passes in are malloc'd (they may be results wasi-libc frees), and after it, they come from
/// the heap (they can only be the next call's arguments). Every export of the SDK's adapters
/// makes one first thing.
pub struct ExportCall(());

impl ExportCall {
    /// Marks the start of an export call; the end is the drop.
    #[must_use = "the call lasts as long as the value"]
    pub fn start() -> Self {
        IDLE.store(false, Ordering::Relaxed);
        ExportCall(())
    }
}

impl Drop for ExportCall {
    fn drop(&mut self) {
        IDLE.store(true, Ordering::Relaxed);
    }
}

/// The canonical ABI's allocation function: the host calls it for the memory of every list
/// and string it passes to the guest. Replaces the standard library's (a weak symbol), which
/// takes everything from the global allocator, this heap, even the lists wasi-libc frees.
///
/// # Safety
/// Called by the host as the canonical ABI says: `old` is null with `old_len` 0, or a block
/// of `old_len` bytes that this function returned with the same `align`.
#[cfg(all(target_arch = "wasm32", feature = "heap"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use std::alloc::{alloc, realloc};
    if old_len == 0 && new_len == 0 {
        return ptr::without_provenance_mut(align);
    }
    // SAFETY: the canonical ABI passes a power-of-two alignment and sizes that fit memory.
    let block = unsafe {
        if old_len != 0 {
            // The heap's own `realloc` sends a block it does not own to malloc's.
            realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        } else if IDLE.load(Ordering::Relaxed) {
            alloc(Layout::from_size_align_unchecked(new_len, align))
        } else {
            System.alloc(Layout::from_size_align_unchecked(new_len, align))
        }
    };
    if block.is_null() {
        core::arch::wasm32::unreachable();
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lists_come_from_the_heap_only_between_export_calls() {
        // Before the first call wasi-libc's constructors may still run: malloc.
        assert!(!IDLE.load(Ordering::Relaxed));
        let call = ExportCall::start();
        assert!(
            !IDLE.load(Ordering::Relaxed),
            "during a call, lists may be wasi-libc's"
        );
        drop(call);
        assert!(
            IDLE.load(Ordering::Relaxed),
            "after it, only the next call's arguments come"
        );
        let _next = ExportCall::start();
        assert!(!IDLE.load(Ordering::Relaxed));
    }

    #[test]
    fn every_size_gets_the_smallest_class_that_holds_it() {
        for size in 1..=MAX_SMALL {
            let class = class_of(size);
            assert!(class < CLASSES, "size {size}");
            assert!(class_size(class) >= size, "size {size} in class {class}");
            assert!(
                class == 0 || class_size(class - 1) < size,
                "size {size}: class {class} not the smallest"
            );
            assert_eq!(class_size(class) % BLOCK_ALIGN, 0);
        }
        assert_eq!(class_size(CLASSES - 1), MAX_SMALL);
        assert_eq!(class_size(class_of(129)), 160);
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn a_freed_block_is_reused_for_its_class_and_blocks_never_overlap() {
        let heap = Heap::new();
        // A deterministic mix of sizes; each live block is filled with its own byte.
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 7u32;
        for step in 0..20_000u32 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let free_one = seed.is_multiple_of(3) && !live.is_empty();
            unsafe {
                if free_one {
                    let (block, l, tag) = live.swap_remove(seed as usize % live.len());
                    let bytes = std::slice::from_raw_parts(block, l.size());
                    assert!(
                        bytes.iter().all(|&b| b == tag),
                        "block of {} bytes was overwritten",
                        l.size()
                    );
                    heap.dealloc(block, l);
                } else {
                    let size = 1
                        + (seed >> 8) as usize % if step.is_multiple_of(50) { 40_000 } else { 600 };
                    let l = layout(size, [1, 4, 8, 16][(seed >> 4) as usize % 4]);
                    let block = heap.alloc(l);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % l.align(), 0);
                    let tag = step as u8;
                    ptr::write_bytes(block, tag, size);
                    live.push((block, l, tag));
                }
            }
        }
        for (block, l, _) in live {
            unsafe { heap.dealloc(block, l) };
        }
        let l = layout(100, 8);
        unsafe {
            let a = heap.alloc(l);
            heap.dealloc(a, l);
            assert_eq!(heap.alloc(l), a, "the freed block comes back first");
        }
    }

    #[test]
    fn blocks_of_the_system_allocator_go_back_to_it() {
        let heap = Heap::new();
        let l = layout(48, 8);
        unsafe {
            let _ = heap.alloc(l); // the heap has a chunk now
            let foreign = System.alloc(l);
            ptr::write_bytes(foreign, 1, 48);
            heap.dealloc(foreign, l);
            for _ in 0..100 {
                assert_ne!(
                    heap.alloc(l),
                    foreign,
                    "a malloc'd block must not enter a free list"
                );
            }
            let foreign = System.alloc(l);
            ptr::write_bytes(foreign, 9, 48);
            let grown = heap.realloc(foreign, l, 300);
            assert!(
                std::slice::from_raw_parts(grown, 48)
                    .iter()
                    .all(|&b| b == 9)
            );
            heap.dealloc(grown, layout(300, 8));
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_to_the_system_allocator() {
        let heap = Heap::new();
        unsafe {
            let mut l = layout(10, 1);
            let mut block = heap.alloc(l);
            for (i, b) in std::slice::from_raw_parts_mut(block, 10)
                .iter_mut()
                .enumerate()
            {
                *b = i as u8;
            }
            for new_size in [12, 200, 5_000, 100_000, 20, 10] {
                block = heap.realloc(block, l, new_size);
                l = layout(new_size, 1);
                let kept = std::slice::from_raw_parts(block, 10);
                assert_eq!(
                    kept,
                    (0..10).collect::<Vec<u8>>(),
                    "after realloc to {new_size}"
                );
            }
            heap.dealloc(block, l);
            let z = heap.alloc_zeroed(layout(64, 8));
            assert!(std::slice::from_raw_parts(z, 64).iter().all(|&b| b == 0));
        }
    }
}
