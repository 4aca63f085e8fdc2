using System.Buffers;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

/// <summary>Test shorthand over the library's one reader contract: read from the start of a buffer and move it on.</summary>
internal static class MessageReaderExtensions
{
    /// <summary>
    /// One <see cref="IMessageReader{TMessage}.TryParseMessage"/> call: on true <paramref name="buffer"/> starts after
    /// the message; on false it starts at the reader's consumed position (separators skipped).
    /// </summary>
    public static bool TryRead<T>(this IMessageReader<T> reader, ref ReadOnlySequence<byte> buffer, out T message)
    {
        var consumed = buffer.Start;
        var examined = buffer.Start;
        var read = reader.TryParseMessage(buffer, ref consumed, ref examined, out message);
        Assert.Equal(buffer.End, read ? buffer.End : examined); // on false, everything was examined
        buffer = buffer.Slice(consumed);
        return read;
    }
}
