using System.Buffers;

namespace Rx.Uhura.Internal;

/// <summary>
/// A growable <see cref="IBufferWriter{T}"/> over <see cref="ArrayPool{T}"/> arrays, reused between batches. It rents
/// nothing until the first write, and <see cref="Release"/> gives the array back when empty, so an idle owner holds no buffer.
/// Only arrays up to <see cref="PoolLimit"/> come from (and go back to) the shared pool. Past that size the writer does
/// not grow one array by doubling (a copy of everything at each step, and a burst's worth of memory kept by whoever gets
/// the array next): it goes on in segments of its own, at least <see cref="PoolLimit"/> each, dropped once written out.
/// A large encoded event is not copied at all (<see cref="WriteShared"/>).
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    // The first array of a burst. Small, because an idle outbox gives its array back and a broadcast to many idle links
    // rents one per link, most of them past what the shared pool keeps (so allocated): 512 B, not 4 KiB, each.
    private const int MinimumSize = 512;

    // After a burst of at least StartHint bytes, the next starts as large as that one needed, up to StartLimit: a fast
    // stream that empties the writer between bursts does not grow from 512 B by doubling (and copying) every time.
    // Smaller bursts start at 512 B as before: a broadcast to many links rents one array per link, and arrays the
    // shared pool does not keep are allocated, so the common small burst must not ask for more than it needs.
    private const int StartHint = 16 * 1024;
    private const int StartLimit = 64 * 1024;

    /// <summary>The largest array rented from or returned to the shared pool (and kept between batches): 1 MiB.</summary>
    internal const int PoolLimit = 1 << 20;

    private byte[] _buffer; // the segment being written
    private bool _pooled;   // whether _buffer was rented (and goes back to the pool)
    private int _written;   // bytes written in _buffer
    private List<(byte[] Array, int Offset, int Count, bool Pooled)>? _full; // earlier segments, in order (or referenced arrays, see WriteShared)
    private int _fullBytes;
    private int _peak;                    // the most bytes written between resets since the last release
    private int _startSize = MinimumSize; // the first array of a burst (see StartLimit)

    public PooledBufferWriter()
    {
        _buffer = [];
    }

    /// <summary>Bytes written since the last <see cref="Reset"/>, across every segment.</summary>
    public int WrittenCount => _fullBytes + _written;

    /// <summary>The written bytes, when they fit in one segment (always below <see cref="PoolLimit"/>); see <see cref="WriteToAsync"/>.</summary>
    /// <exception cref="InvalidOperationException">They span several segments.</exception>
    public ReadOnlyMemory<byte> WrittenMemory => _full is null ? _buffer.AsMemory(0, _written) : throw new InvalidOperationException("The written bytes span several segments.");

    /// <inheritdoc cref="WrittenMemory"/>
    public ReadOnlySpan<byte> WrittenSpan => WrittenMemory.Span;

    public void Advance(int count)
    {
        if ((uint)count > (uint)(_buffer.Length - _written))
        {
            throw new ArgumentOutOfRangeException(nameof(count));
        }

        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        var free = _buffer.Length - _written;
        if (bytes.Length > free && free > 0 && _buffer.Length >= PoolLimit)
        {
            // A full-size segment is filled to the brim before the next one starts.
            bytes[..free].CopyTo(_buffer.AsSpan(_written));
            _written += free;
            bytes = bytes[free..];
        }

        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_written));
        _written += bytes.Length;
    }

    /// <summary>Below this many bytes <see cref="WriteShared"/> copies: a reference costs a segment and a write of its own.</summary>
    internal const int ShareMinimum = 32 * 1024;

    /// <summary>
    /// Appends <paramref name="count"/> bytes of <paramref name="array"/> from <paramref name="offset"/> by reference when
    /// they are many (at least <see cref="ShareMinimum"/>): the array must not change until the writer is reset. Large
    /// encoded events are written out from their own arrays, so waiting to be written costs no second copy of them.
    /// </summary>
    public void WriteShared(byte[] array, int offset, int count)
    {
        if (count < ShareMinimum)
        {
            Write(array.AsSpan(offset, count));
            return;
        }

        if ((long)WrittenCount + count > Array.MaxLength)
        {
            throw new OutOfMemoryException($"A buffer of {(long)WrittenCount + count} bytes was asked for.");
        }

        var full = _full ??= [];
        if (_written > 0)
        {
            full.Add((_buffer, 0, _written, _pooled)); // what was written so far stays first; later writes start a new array
            _fullBytes += _written;
            _buffer = [];
            _pooled = false;
            _written = 0;
        }

        full.Add((array, offset, count, false));
        _fullBytes += count;
    }

    /// <summary>Writes every segment to <paramref name="stream"/>, in order (one write when there is one segment).</summary>
    public async ValueTask WriteToAsync(Stream stream)
    {
        if (_full is { } full)
        {
            foreach (var (array, offset, count, _) in full)
            {
                await stream.WriteAsync(array.AsMemory(offset, count)).ConfigureAwait(false);
            }
        }

        await stream.WriteAsync(_buffer.AsMemory(0, _written)).ConfigureAwait(false);
    }

    /// <summary>Forgets the written bytes; keeps one array up to <see cref="PoolLimit"/> for the next batch and lets go of the rest.</summary>
    public void Reset()
    {
        _peak = Math.Max(_peak, WrittenCount);
        _written = 0;
        DropFullSegments();
        if (!_pooled)
        {
            Release(); // a segment of the burst's own: the next batch rents a small one
        }
    }

    /// <summary>Gives the arrays back (to the pool, or to the GC above <see cref="PoolLimit"/>) if nothing is written; the next write rents one again.</summary>
    public void Release()
    {
        if (WrittenCount == 0 && _buffer.Length > 0)
        {
            _startSize = _peak < StartHint ? MinimumSize : (int)Math.Min(StartLimit, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)_peak));
            _peak = 0;
            GiveBack(_buffer, _pooled);
            _buffer = [];
            _pooled = false;
        }
    }

    public byte[] ToArray()
    {
        var result = GC.AllocateUninitializedArray<byte>(WrittenCount);
        var at = 0;
        foreach (var (array, offset, count, _) in _full ?? [])
        {
            array.AsSpan(offset, count).CopyTo(result.AsSpan(at));
            at += count;
        }

        _buffer.AsSpan(0, _written).CopyTo(result.AsSpan(at));
        return result;
    }

    public void Dispose()
    {
        DropFullSegments();
        GiveBack(_buffer, _pooled);
        _buffer = [];
        _pooled = false;
        _written = 0;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void DropFullSegments()
    {
        if (_full is not null)
        {
            DropFullSegmentsCore(); // a burst's segments are rare: the check stays inlined in every reset
        }
    }

    private void DropFullSegmentsCore()
    {
        if (_full is { } full)
        {
            foreach (var (array, _, _, pooled) in full)
            {
                GiveBack(array, pooled);
            }

            _full = null;
            _fullBytes = 0;
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private void Ensure(int sizeHint)
    {
        if (_buffer.Length - _written < Math.Max(sizeHint, 1))
        {
            Grow(Math.Max(sizeHint, 1)); // the common case (room left) stays inlined in every write
        }
    }

    private void Grow(int sizeHint)
    {
        var size = Math.Max(Math.Max((long)_buffer.Length * 2, _buffer.Length == 0 ? _startSize : MinimumSize), (long)_written + sizeHint);
        if (size <= PoolLimit)
        {
            var next = ArrayPool<byte>.Shared.Rent((int)size);
            _buffer.AsSpan(0, _written).CopyTo(next);
            GiveBack(_buffer, _pooled);
            _buffer = next;
            _pooled = true;
            return;
        }

        // Past the pool's limit: the segment written so far stays as it is, and a new one of the writer's own starts
        // (not zeroed: pages never written stay untouched).
        if ((long)WrittenCount + sizeHint > Array.MaxLength)
        {
            throw new OutOfMemoryException($"A buffer of {(long)WrittenCount + sizeHint} bytes was asked for.");
        }

        if (_written > 0)
        {
            (_full ??= []).Add((_buffer, 0, _written, _pooled));
            _fullBytes += _written;
        }
        else
        {
            GiveBack(_buffer, _pooled);
        }

        _buffer = GC.AllocateUninitializedArray<byte>(Math.Max(PoolLimit, sizeHint));
        _pooled = false;
        _written = 0;
    }

    /// <summary>Rented arrays (never above <see cref="PoolLimit"/>) go back to the pool; the writer's own segments are left to the GC, so the pool never fills up with a burst's memory.</summary>
    private static void GiveBack(byte[] buffer, bool pooled)
    {
        if (pooled)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
