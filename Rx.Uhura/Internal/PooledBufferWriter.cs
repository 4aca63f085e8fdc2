using System.Buffers;

namespace Rx.Uhura.Internal;

/// <summary>
/// A growable <see cref="IBufferWriter{T}"/> over <see cref="ArrayPool{T}"/> arrays, reused between batches. It rents
/// nothing until the first write, and <see cref="Release"/> gives the array back when empty, so an idle owner holds no buffer.
/// Only arrays up to <see cref="PoolLimit"/> come from (and go back to) the shared pool: a burst that needs more gets
/// arrays of its own, dropped as soon as they are empty, so neither this writer nor the pool keeps a burst's memory.
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private const int MinimumSize = 4096;
    /// <summary>The largest array rented from or returned to the shared pool (and kept between batches): 1 MiB.</summary>
    internal const int PoolLimit = 1 << 20;
    private byte[] _buffer;
    private int _written;

    public PooledBufferWriter()
    {
        _buffer = [];
    }

    public int WrittenCount => _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

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
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_written));
        _written += bytes.Length;
    }

    /// <summary>Forgets the written bytes; drops an array above <see cref="PoolLimit"/> so one burst does not pin memory.</summary>
    public void Reset()
    {
        _written = 0;
        if (_buffer.Length > PoolLimit)
        {
            Release();
        }
    }

    /// <summary>Gives the array back (to the pool, or to the GC when it is above <see cref="PoolLimit"/>) if nothing is written; the next write rents one again.</summary>
    public void Release()
    {
        if (_written == 0 && _buffer.Length > 0)
        {
            GiveBack(_buffer);
            _buffer = [];
        }
    }

    public byte[] ToArray() => WrittenSpan.ToArray();

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _written = 0;
        GiveBack(buffer);
    }

    private void Ensure(int sizeHint)
    {
        sizeHint = Math.Max(sizeHint, 1);
        if (_buffer.Length - _written >= sizeHint)
        {
            return;
        }

        var size = (int)Math.Min(Math.Max(Math.Max((long)_buffer.Length * 2, MinimumSize), (long)_written + sizeHint), Array.MaxLength);
        if (size < _written + sizeHint)
        {
            throw new OutOfMemoryException($"A buffer of {(long)_written + sizeHint} bytes was asked for.");
        }

        // Past the pool's limit the array is the writer's own (not zeroed: pages never written stay untouched).
        var next = size <= PoolLimit ? ArrayPool<byte>.Shared.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
        _buffer.AsSpan(0, _written).CopyTo(next);
        GiveBack(_buffer);
        _buffer = next;
    }

    /// <summary>Arrays up to <see cref="PoolLimit"/> were rented (the pool never hands out a larger one for such a size): they go back; larger ones are left to the GC.</summary>
    private static void GiveBack(byte[] buffer)
    {
        if (buffer.Length is > 0 and <= PoolLimit)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
