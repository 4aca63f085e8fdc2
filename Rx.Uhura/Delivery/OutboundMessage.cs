using System.Buffers;

namespace Rx.Uhura.Internal;

/// <summary>
/// One event on its way out: the encoded <c>["name", ...args]</c> payload (encoded once, shared by resends and by every
/// recipient of a broadcast) and how its outcome is reported: the task a <c>Send</c> caller awaits, or, for a posted
/// event, nothing on success and the owner's failure sink on failure. Nothing is allocated per event beyond this object.
/// </summary>
internal sealed class OutboundMessage
{
    // The task an awaited send completes, or a posted send's failure sink: one field for the two (a message has one
    // or the other), so that a broadcast's copy per recipient stays eight words.
    private readonly object? _outcome;
    private int _failed;

    public OutboundMessage(string name, byte[] payload, bool awaited, int nameEnd = -1, IObserver<SendException>? failureSink = null)
    {
        Name = name;
        Payload = payload;
        NameEnd = nameEnd;
        _outcome = awaited ? new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) : failureSink;
    }

    /// <summary>
    /// Reads back an encoded event (<c>["name",args...]</c>, as <see cref="Payload"/> holds it) that a durable store kept,
    /// as a posted message with sequence number <paramref name="seq"/>; null when the bytes are not such an array.
    /// </summary>
    public static OutboundMessage? FromPayload(ReadOnlyMemory<byte> payload, long seq)
    {
        try
        {
            var reader = new System.Text.Json.Utf8JsonReader(payload.Span);
            if (!reader.Read() || reader.TokenType != System.Text.Json.JsonTokenType.StartArray
                || !reader.Read() || reader.TokenType != System.Text.Json.JsonTokenType.String)
            {
                return null;
            }

            var name = reader.GetString()!;
            var nameEnd = (int)reader.BytesConsumed;
            var bytes = payload.ToArray();
            if (name.Length == 0 || nameEnd >= bytes.Length || bytes[nameEnd] is not ((byte)',' or (byte)']') || bytes[^1] != (byte)']')
            {
                return null;
            }

            return new OutboundMessage(name, bytes, awaited: false, nameEnd) { Seq = seq };
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    public string Name { get; }

    public byte[] Payload { get; }

    /// <summary>Where the name ends in <see cref="Payload"/> (after its closing quote): what follows is <c>,args...]</c> or <c>]</c>.</summary>
    public int NameEnd { get; }

    /// <summary>Whether the event has arguments: the payload goes on after the name with a comma.</summary>
    public bool HasArguments => Payload[NameEnd] == (byte)',';

    /// <summary>The arguments' JSON without the array's brackets (<c>a,b</c> of <c>["name",a,b]</c>); empty without arguments.</summary>
    public ReadOnlySpan<byte> ArgumentsBody => HasArguments ? Payload.AsSpan(NameEnd + 1, Payload.Length - NameEnd - 2) : default;

    /// <summary>The arguments as a JSON array, as the native protocol carries them: <c>[</c> followed by the payload after the name's comma.</summary>
    public int NativeArgsLength => HasArguments ? Payload.Length - NameEnd : 2;

    /// <summary>Writes the arguments array (<see cref="NativeArgsLength"/> bytes) without copying the payload twice.</summary>
    public void WriteNativeArgs(IBufferWriter<byte> output)
    {
        if (HasArguments)
        {
            var span = output.GetSpan(1);
            span[0] = (byte)'[';
            output.Advance(1);
            if (output is PooledBufferWriter pooled)
            {
                pooled.WriteShared(Payload, NameEnd + 1, Payload.Length - NameEnd - 1); // a large payload is referenced, not copied
            }
            else
            {
                output.Write(Payload.AsSpan(NameEnd + 1));
            }
        }
        else
        {
            output.Write("[]"u8);
        }
    }

    /// <summary>The task of a <c>Send</c>; null for a posted event.</summary>
    public TaskCompletionSource? Completion => _outcome as TaskCompletionSource;

    /// <summary>Where a posted event's failure is reported (a client's <c>Dropped</c>); null when nobody listens.</summary>
    public IObserver<SendException>? FailureSink => _outcome as IObserver<SendException>;

    /// <summary>True once <see cref="Fail"/> was called.</summary>
    public bool IsFailed => Volatile.Read(ref _failed) != 0;

    /// <summary>
    /// The message's sequence number, assigned once by its owner (the client, for its sends; the connection otherwise)
    /// and kept when the message is resent on a new link, so the receiver can drop what it already delivered. 0 = not yet.
    /// </summary>
    public long Seq { get; set; }

    private static long s_lastOrder;

    /// <summary>
    /// Where the message stands among the sends of the process, stamped (<see cref="StampOrder"/>) when it first waits
    /// unnumbered (for a handshake, or with a session's stream for the client's next link): a server link that takes
    /// over a session writes what waited in this order, wherever it waited. 0 = never waited.
    /// </summary>
    public long Order { get; private set; }

    /// <summary>Stamps <see cref="Order"/> once, when the message first waits unnumbered; later calls keep the first stamp.</summary>
    public void StampOrder()
    {
        if (Order == 0)
        {
            Order = Interlocked.Increment(ref s_lastOrder);
        }
    }

    /// <summary>A copy for another recipient of a broadcast: the same payload bytes, its own sequence number and outcome.</summary>
    public OutboundMessage ForRecipient() => new(Name, Payload, awaited: false, NameEnd);

    public void Succeed() => Completion?.TrySetResult();

    /// <summary>The arguments as a JSON array, for an error about this send.</summary>
    public string ArgumentsJson => NameEnd < 0
        ? System.Text.Encoding.UTF8.GetString(Payload)
        : "[" + System.Text.Encoding.UTF8.GetString(ArgumentsBody) + "]";

    private void Describe(Exception error)
    {
        if (error is SendException send && send.ArgumentsJson is null)
        {
            send.ArgumentsJson = ArgumentsJson;
        }
    }

    /// <summary>Fails a message that was never accepted: its sender learns it from the return value, not from the failure sink.</summary>
    public void Refuse(Exception error)
    {
        if (Interlocked.Exchange(ref _failed, 1) == 0)
        {
            Describe(error);
            Completion?.TrySetException(error);
        }
    }

    public void Fail(Exception error)
    {
        if (Interlocked.Exchange(ref _failed, 1) != 0)
        {
            return;
        }

        Describe(error);
        if (Completion is { } completion)
        {
            completion.TrySetException(error);
        }
        else if (FailureSink is { } sink && error is SendException sendError)
        {
            sink.OnNext(sendError);
        }
    }
}
