using System.Buffers;

namespace Rx.Uhura.Protocol;

/// <summary>
/// One wire's inbound framing: the one seam every link reads through (BedrockFramework's reader shape). Each wire —
/// native, Node uhura, socket-ipc, native mesh, masterless — has one reader, made per link with the link's maximum
/// message size, and each read loop calls it the same way:
/// <code>
/// var consumed = buffer.Start; var examined = buffer.Start;
/// while (reader.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var message)) { handle(message); }
/// pipe.AdvanceTo(consumed, examined);
/// </code>
/// </summary>
/// <typeparam name="TMessage">What one message decodes to on this wire.</typeparam>
/// <remarks>
/// The maximum size is checked here and only here, as soon as it is known to be exceeded (a declared length over it,
/// or more bytes than it without the end of the message), before the message is buffered whole. Readers may keep
/// scan state between calls (a message arriving in many small reads is scanned once, in time proportional to its
/// size), so a reader belongs to one link and is called with the bytes that follow the last <c>consumed</c>.
/// </remarks>
internal interface IMessageReader<TMessage>
{
    /// <summary>
    /// The largest message accepted, in the wire's own measure (the native wires count the type byte and body, the
    /// delimited wires the bytes before the delimiter, the Node wire the element). A link may change it between calls
    /// (the mesh admits larger frames once the peer is identified).
    /// </summary>
    long MaxMessageSize { get; set; }

    /// <summary>
    /// Reads the message at the start of <paramref name="input"/>, which begins at the last <paramref name="consumed"/>
    /// position. On true, <paramref name="consumed"/> and <paramref name="examined"/> are the position after the
    /// message. On false, <paramref name="consumed"/> may have moved past bytes between messages (separators,
    /// whitespace) and <paramref name="examined"/> is the end of <paramref name="input"/>: nothing more can be read
    /// until more bytes arrive.
    /// </summary>
    /// <exception cref="FrameTooLargeException">The message is, or will be, larger than <see cref="MaxMessageSize"/>.</exception>
    /// <exception cref="DecodeException">The bytes are not a message of this wire.</exception>
    /// <exception cref="ProtocolException">The message is well formed but not one this wire defines (an unknown type).</exception>
    bool TryParseMessage(in ReadOnlySequence<byte> input, ref SequencePosition consumed, ref SequencePosition examined, out TMessage message);
}
