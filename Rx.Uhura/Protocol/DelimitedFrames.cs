using System.Buffers;

namespace Rx.Uhura.Protocol;

/// <summary>
/// Frames ended by a delimiter (socket-ipc's <c>\0\0</c>, masterless's <c>\r\n</c>), cut from buffered bytes without
/// searching the same bytes twice: a frame arriving in many small reads costs time in proportion to its size, not to
/// its size squared.
/// </summary>
internal static class DelimitedFrames
{
    /// <summary>
    /// Cuts the frame at the start of <paramref name="buffer"/> and advances the buffer past its delimiter. While the
    /// delimiter has not arrived, returns false and records in <paramref name="scanned"/> how many bytes were searched,
    /// so the next call, given the same start plus more bytes, searches only the new ones.
    /// </summary>
    /// <param name="buffer">Buffered bytes starting at a frame boundary.</param>
    /// <param name="delimiter">The bytes that end a frame.</param>
    /// <param name="maxFrame">The largest frame accepted, delimiter excluded.</param>
    /// <param name="scanned">Bytes of <paramref name="buffer"/> already searched without finding the delimiter (0 for a new frame); kept by the caller between calls.</param>
    /// <param name="frame">The frame, without its delimiter.</param>
    /// <exception cref="FrameTooLargeException">The frame is, or will be, longer than <paramref name="maxFrame"/>.</exception>
    public static bool TryCut(ref ReadOnlySequence<byte> buffer, ReadOnlySpan<byte> delimiter, long maxFrame, ref long scanned, out ReadOnlySequence<byte> frame)
    {
        // A delimiter may straddle the end of what was searched: step back by its length less one.
        var skip = Math.Max(0, Math.Min(scanned, buffer.Length) - (delimiter.Length - 1));
        var reader = new SequenceReader<byte>(buffer.Slice(skip));
        if (!reader.TryReadTo(out ReadOnlySequence<byte> before, delimiter, advancePastDelimiter: true))
        {
            if (buffer.Length > maxFrame + delimiter.Length)
            {
                throw new FrameTooLargeException(maxFrame);
            }

            scanned = buffer.Length;
            frame = default;
            return false;
        }

        frame = buffer.Slice(0, skip + before.Length);
        if (frame.Length > maxFrame)
        {
            throw new FrameTooLargeException(maxFrame);
        }

        buffer = buffer.Slice(reader.Position);
        scanned = 0;
        return true;
    }
}
