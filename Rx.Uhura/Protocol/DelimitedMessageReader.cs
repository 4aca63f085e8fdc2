using System.Buffers;

namespace Rx.Uhura.Protocol;

/// <summary>
/// The <see cref="IMessageReader{TMessage}"/> of the wires whose messages end with a delimiter (socket-ipc's
/// <c>\0\0</c>, masterless's <c>\r\n</c>): a message is its bytes without the delimiter. It never searches the same
/// bytes twice: a message arriving in many small reads costs time in proportion to its size, not to its size squared.
/// </summary>
internal sealed class DelimitedMessageReader : IMessageReader<ReadOnlySequence<byte>>
{
    private readonly byte[] _delimiter;

    /// <summary>Bytes at the start of the unread input already searched without finding the delimiter.</summary>
    private long _scanned;

    /// <summary>A reader for one link.</summary>
    /// <param name="delimiter">The bytes that end a message.</param>
    /// <param name="maxMessageSize">The largest message accepted, delimiter excluded.</param>
    public DelimitedMessageReader(ReadOnlySpan<byte> delimiter, long maxMessageSize)
    {
        if (delimiter.IsEmpty)
        {
            throw new ArgumentException("A delimiter has at least one byte.", nameof(delimiter));
        }

        _delimiter = delimiter.ToArray();
        MaxMessageSize = maxMessageSize;
    }

    /// <inheritdoc/>
    public long MaxMessageSize { get; set; }

    /// <summary>
    /// Cuts the message at the start of <paramref name="input"/> (without its delimiter). While the delimiter has not
    /// arrived, returns false and remembers how many bytes were searched, so the next call, given the same start plus
    /// more bytes, searches only the new ones.
    /// </summary>
    /// <exception cref="FrameTooLargeException">The message is, or will be, longer than <see cref="MaxMessageSize"/>.</exception>
    public bool TryParseMessage(in ReadOnlySequence<byte> input, ref SequencePosition consumed, ref SequencePosition examined, out ReadOnlySequence<byte> message)
    {
        ReadOnlySpan<byte> delimiter = _delimiter;

        // A delimiter may straddle the end of what was searched: step back by its length less one.
        var skip = Math.Max(0, Math.Min(_scanned, input.Length) - (delimiter.Length - 1));
        var reader = new SequenceReader<byte>(input.Slice(skip));
        if (!reader.TryReadTo(out ReadOnlySequence<byte> before, delimiter, advancePastDelimiter: true))
        {
            if (input.Length > MaxMessageSize + delimiter.Length)
            {
                throw new FrameTooLargeException(MaxMessageSize);
            }

            _scanned = input.Length;
            examined = input.End;
            message = default;
            return false;
        }

        message = input.Slice(0, skip + before.Length);
        if (message.Length > MaxMessageSize)
        {
            throw new FrameTooLargeException(MaxMessageSize);
        }

        consumed = reader.Position;
        examined = consumed;
        _scanned = 0;
        return true;
    }
}
