using System.Buffers;
namespace Rx.Uhura.Internal;

/// <summary>
/// One event on its way out: the encoded <c>["name", ...args]</c> payload (encoded once, reused by resends) and the
/// completion the sender awaits. Internal messages (the server's <c>connect</c>) have no completion.
/// </summary>
internal sealed class OutboundMessage
{
    public OutboundMessage(string name, byte[] payload, bool awaited, int nameEnd = -1)
    {
        Name = name;
        Payload = payload;
        NameEnd = nameEnd;
        Completion = awaited ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : null;
    }

    public string Name { get; }

    public byte[] Payload { get; }

    /// <summary>Where the name ends in <see cref="Payload"/> (after its closing quote): what follows is <c>,args...]</c> or <c>]</c>.</summary>
    public int NameEnd { get; }

    /// <summary>The arguments as a JSON array, as the native protocol carries them: <c>[</c> followed by the payload after the name's comma.</summary>
    public int NativeArgsLength => Payload[NameEnd] == (byte)',' ? Payload.Length - NameEnd : 2;

    /// <summary>Writes the arguments array (<see cref="NativeArgsLength"/> bytes) without copying the payload twice.</summary>
    public void WriteNativeArgs(IBufferWriter<byte> output)
    {
        if (Payload[NameEnd] == (byte)',')
        {
            var span = output.GetSpan(1);
            span[0] = (byte)'[';
            output.Advance(1);
            output.Write(Payload.AsSpan(NameEnd + 1));
        }
        else
        {
            output.Write("[]"u8);
        }
    }

    public TaskCompletionSource? Completion { get; }

    /// <summary>
    /// The message's sequence number, assigned once by its owner (the client, for its sends; the connection otherwise)
    /// and kept when the message is resent on a new link, so the receiver can drop what it already delivered. 0 = not yet.
    /// </summary>
    public long Seq { get; set; }

    public void Succeed() => Completion?.TrySetResult();

    public void Fail(Exception error) => Completion?.TrySetException(error);
}
