//! The evaluator's heap faulted in ahead of it, on another core.
//!
//! An evaluation's heap only grows (the NixOS toplevel touches about 370 MB
//! of fresh memory, one 4 KiB page at a time), and each first touch is a
//! page fault in which the kernel allocates and zeroes a page: 13% of the
//! evaluation thread's CPU samples on that workload. The evaluation is one
//! thread, so on a machine with a second core this thread takes those
//! faults instead, just ahead of where the evaluation is about to allocate,
//! with `MADV_POPULATE_WRITE` (Linux 5.14; on older kernels the first call
//! fails and the thread ends). The total CPU time is the same; the
//! evaluation's own is shorter.
//!
//! Where the evaluation allocates next is read from the heap itself, not
//! guessed. mimalloc takes its pages from a large arena, from the low
//! addresses up. Each 256 KiB chunk this thread faults in keeps its last
//! page untouched, a sensor: when the sensor becomes resident, the
//! evaluation has reached that chunk. The highest resident sensor (or any
//! resident page beyond the faulted-in part) is the frontier, and this
//! thread keeps at most [`LEAD`] bytes faulted in beyond it, so what it
//! adds to the process's memory is bounded by that, and the evaluation
//! still takes one fault in 64. Memory mimalloc gives back (`MADV_DONTNEED`
//! of freed pages) and reuses later faults as before.
//!
//! Nothing here can change what the evaluation computes: faulting in a page
//! of an anonymous private mapping leaves its contents as they were (zero,
//! or what was written). Errors (a kernel without `MADV_POPULATE_WRITE`,
//! memory unmapped meanwhile) end the thread.
//! `ATTRFS_NO_PREFAULT=1` turns it off.

use std::time::Duration;

const PAGE: usize = 4096;
/// Faulted in at a time; its last page is the sensor.
const CHUNK: usize = 256 << 10;
/// How far beyond the evaluation's frontier memory is faulted in.
const LEAD: usize = 8 << 20;
/// How far beyond the faulted-in part each poll looks for a frontier that
/// jumped ahead (a large allocation, another thread's pages).
const LOOKOUT: usize = 16 << 20;
/// Every this many polls, the whole rest of the region is looked at.
const FULL_LOOK_EVERY: u32 = 32;
/// Polling intervals: the heap grows by about 0.15 MB in a busy poll (the
/// NixOS toplevel allocates 150 MB/s), well within [`LEAD`]; a mount's
/// worker waits for requests most of the time, so idle polls back off.
const BUSY_POLL: Duration = Duration::from_millis(1);
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Starts the thread for the heap the calling thread allocates from, unless
/// there is only one core, `ATTRFS_NO_PREFAULT` is set, or the heap's
/// mapping cannot be found.
pub fn start() {
    if std::env::var_os("ATTRFS_NO_PREFAULT").is_some()
        || std::thread::available_parallelism().map_or(true, |n| n.get() < 2)
    {
        return;
    }
    // A block of the heap tells which mapping the heap is.
    let probe = Box::new(0u64);
    let Some((start, end)) = mapping_containing(&*probe as *const u64 as usize) else {
        return;
    };
    drop(probe);
    let _ = std::thread::Builder::new()
        .name("attrfs-prefault".into())
        .stack_size(64 << 10)
        .spawn(move || run(Region { start, end }));
}

/// The heap's mapping, page aligned.
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    end: usize,
}

fn run(region: Region) {
    // Outside the heap: this thread's own writes to the map must not look
    // like the evaluation's pages.
    let Some(mut map) = ResidencyMap::new((region.end - region.start) / PAGE) else {
        return;
    };
    let residency = map.bytes();
    let mut frontier = region.start;
    let mut faulted = region.start;
    let mut idle_polls = 0u32;
    let mut poll = 0u32;
    loop {
        poll = poll.wrapping_add(1);
        // Where the evaluation is: the highest sensor it reached in the
        // faulted-in part, or any page it touched beyond (at first and
        // now and then, anywhere beyond).
        let look_from = faulted.saturating_sub(LEAD).max(frontier).max(region.start);
        let lookout = if poll % FULL_LOOK_EVERY == 1 {
            region.end
        } else {
            faulted + LOOKOUT
        };
        let look_to = lookout.min(region.end);
        let window = &mut residency[..(look_to - look_from) / PAGE];
        let Some(found) = frontier_in(region.start, look_from, faulted, look_to, window) else {
            return;
        };
        let moved = found > frontier;
        frontier = frontier.max(found);
        if frontier > faulted {
            faulted = round_up(frontier, region.start);
        }
        let target = (frontier + LEAD).min(region.end);
        let mut worked = false;
        while faulted + CHUNK <= target {
            // SAFETY: the range lies in the heap's mapping; populating
            // pages of an anonymous private mapping does not change their
            // contents, and a range unmapped meanwhile is an error, not a
            // fault.
            let r = unsafe {
                libc::madvise(
                    faulted as *mut libc::c_void,
                    CHUNK - PAGE,
                    libc::MADV_POPULATE_WRITE,
                )
            };
            if r != 0 {
                return;
            }
            faulted += CHUNK;
            worked = true;
        }
        if moved || worked {
            idle_polls = 0;
            std::thread::sleep(BUSY_POLL);
        } else {
            idle_polls = idle_polls.saturating_add(1);
            std::thread::sleep(if idle_polls > 200 {
                IDLE_POLL
            } else {
                BUSY_POLL
            });
        }
    }
}

/// The frontier seen in `[from, to)`: the end of the highest chunk (chunks
/// counted from `origin`) whose sensor is resident below `faulted`, or the
/// highest resident page at or above it, whichever is higher; `from` if
/// neither. `None` if the range cannot be read.
fn frontier_in(
    origin: usize,
    from: usize,
    faulted: usize,
    to: usize,
    residency: &mut [u8],
) -> Option<usize> {
    if to <= from {
        return Some(from);
    }
    // SAFETY: `residency` has one byte per page of `[from, to)`.
    let r = unsafe { libc::mincore(from as *mut libc::c_void, to - from, residency.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    let page_at = |i: usize| from + i * PAGE;
    let beyond = residency
        .iter()
        .enumerate()
        .rev()
        .find(|&(i, &b)| b & 1 != 0 && page_at(i) >= faulted)
        .map(|(i, _)| page_at(i) + PAGE);
    if beyond.is_some() {
        return beyond;
    }
    let sensor = residency
        .iter()
        .enumerate()
        .rev()
        .find(|&(i, &b)| {
            b & 1 != 0 && page_at(i) < faulted && (page_at(i) + PAGE - origin).is_multiple_of(CHUNK)
        })
        .map(|(i, _)| page_at(i) + PAGE);
    Some(sensor.unwrap_or(from))
}

/// A buffer for `mincore`'s answer, mapped by itself rather than allocated
/// from the heap it describes.
struct ResidencyMap {
    ptr: *mut u8,
    len: usize,
}

impl ResidencyMap {
    fn new(len: usize) -> Option<ResidencyMap> {
        // SAFETY: a fresh anonymous mapping, owned by the value and
        // unmapped when it is dropped.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(ResidencyMap {
            ptr: ptr.cast(),
            len,
        })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` readable and writable bytes, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for ResidencyMap {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// `at`, rounded up to a chunk boundary of the region starting at `start`.
fn round_up(at: usize, start: usize) -> usize {
    start + (at - start).div_ceil(CHUNK) * CHUNK
}

/// The `[start, end)` of the mapping in /proc/self/maps that contains
/// `address`.
fn mapping_containing(address: usize) -> Option<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|line| {
        let range = line.split_whitespace().next()?;
        let (a, b) = range.split_once('-')?;
        let (a, b) = (
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        );
        (a <= address && address < b).then_some((a, b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_counted_from_the_region_start() {
        assert_eq!(round_up(0x1000_0000, 0x1000_0000), 0x1000_0000);
        assert_eq!(round_up(0x1000_0001, 0x1000_0000), 0x1000_0000 + CHUNK);
        assert_eq!(
            round_up(0x1000_0000 + CHUNK, 0x1000_0000),
            0x1000_0000 + CHUNK
        );
    }

    #[test]
    fn the_frontier_is_the_highest_sensor_reached_or_page_beyond() {
        // A mapping of our own: 4 chunks, the first two faulted in by
        // "this thread" except their sensors.
        let len = 4 * CHUNK;
        // SAFETY: a fresh anonymous mapping, unmapped at the end.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base as usize;
        let touch = |at: usize| unsafe { (at as *mut u8).write_volatile(1) };
        for chunk in 0..2 {
            for page in 0..CHUNK / PAGE - 1 {
                touch(base + chunk * CHUNK + page * PAGE);
            }
        }
        let faulted = base + 2 * CHUNK;
        let mut residency = vec![0u8; len / PAGE];
        // No sensor reached yet: the frontier stays where the look began.
        assert_eq!(
            frontier_in(base, base, faulted, base + len, &mut residency),
            Some(base)
        );
        // The evaluation reached the first chunk's sensor.
        touch(base + CHUNK - PAGE);
        assert_eq!(
            frontier_in(base, base, faulted, base + len, &mut residency),
            Some(base + CHUNK)
        );
        // It jumped beyond what was faulted in.
        touch(base + 3 * CHUNK + 5 * PAGE);
        assert_eq!(
            frontier_in(base, base, faulted, base + len, &mut residency),
            Some(base + 3 * CHUNK + 6 * PAGE)
        );
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(base as *mut libc::c_void, len) };
    }

    #[test]
    fn the_heap_mapping_is_found() {
        let b = Box::new(7u64);
        let addr = &*b as *const u64 as usize;
        let (start, end) = mapping_containing(addr).expect("the heap is mapped");
        assert!(start <= addr && addr < end);
    }
}
