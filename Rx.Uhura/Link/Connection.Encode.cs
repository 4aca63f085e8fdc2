using Newtonsoft.Json;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura;

// Encoding an application event once, and refusing at the sender what the peer would refuse.
public sealed partial class Connection
{
    /// <summary>Validates and encodes an application event once (awaited: a <see cref="Send"/>).</summary>
    internal static OutboundMessage? CreateMessage(string eventName, ReadOnlySpan<object?> args, JsonSerializer serializer, WireProtocol? wire, ConnectionOptions limits, out Exception? error)
        => CreateMessage(eventName, args, serializer, awaited: true, null, wire, limits, out error);

    /// <summary>
    /// Validates and encodes an application event once; <paramref name="awaited"/> false for a posted event. The name
    /// rules and the number of arguments depend on the <paramref name="wire"/> (null = either uhura wire). An event the
    /// peer would refuse (<see cref="RefusePoison"/>) fails here, before anything is queued: sent, it would only end the
    /// link, and be sent again on every new one.
    /// </summary>
    internal static OutboundMessage? CreateMessage(string eventName, ReadOnlySpan<object?> args, JsonSerializer serializer, bool awaited, IObserver<SendException>? failureSink, WireProtocol? wire, ConnectionOptions limits, out Exception? error)
    {
        ValidateEventName(eventName, wire);
        if (wire == WireProtocol.SocketIpc)
        {
            if (args.Length > 1)
            {
                error = new EncodeException(eventName, $"socket-ipc carries one message per topic, not {args.Length}: send one array or object.");
                return null;
            }
        }

        byte[] payload;
        int nameEnd;
        bool strict;
        try
        {
            payload = NodeWireCodec.EncodePayload(eventName, args, serializer, out nameEnd, out strict, limits.MaxJsonDepth);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Serializing runs the application's code (converters, getters, ToString): whatever it throws, the send fails
            // as one that cannot be encoded, never with a raw exception from Send.
            error = new EncodeException(eventName, ex);
            return null;
        }

        error = RefusePoison(eventName, payload, nameEnd, strict, wire, limits);
        return error is null ? new OutboundMessage(eventName, payload, awaited, nameEnd, failureSink) : null;
    }

    /// <summary>Bytes a frame adds around the payload on the JSON wires (object form with its id, socket-ipc's keys and delimiter), at most.</summary>
    private const int JsonFrameOverhead = 128;

    /// <summary>
    /// Checks an encoded payload against what the receiving side's decoder accepts, with this side's limits (the native
    /// handshake announces none, so both ends are expected to share them): a frame larger than
    /// <see cref="ConnectionOptions.MaxMessageSize"/> is a <see cref="FrameTooLargeException"/>; JSON that is not strict
    /// (Newtonsoft writes <c>undefined</c>, <c>NaN</c> or <c>Infinity</c> for some values, which neither a .NET peer nor
    /// Node's JSON parser accepts), invalid UTF-8 or nesting deeper than <see cref="ConnectionOptions.MaxJsonDepth"/> is an
    /// <see cref="EncodeException"/>. Only the bytes already encoded are read: nothing is serialized twice, and a
    /// <paramref name="strict"/> payload (simple values only, one level deep, written by the library's own writer) is
    /// not read again.
    /// </summary>
    private static Exception? RefusePoison(string eventName, byte[] payload, int nameEnd, bool strict, WireProtocol? wire, ConnectionOptions limits)
    {
        // A native frame carries the name's UTF-8 length in 16 bits. Checked here, not when the frame is written: by then
        // the event has its sequence number, and a refusal would leave a gap that ends the link. (The name's JSON form,
        // between its quotes, is never shorter than its UTF-8 form, so the count is only made for long names.)
        if (wire is not (WireProtocol.NodeUhura or WireProtocol.SocketIpc) && nameEnd - 3 > ushort.MaxValue
            && System.Text.Encoding.UTF8.GetByteCount(eventName) > ushort.MaxValue)
        {
            return new EncodeException(eventName[..Math.Min(eventName.Length, 64)] + "…", $"the name is {System.Text.Encoding.UTF8.GetByteCount(eventName)} bytes of UTF-8; the native wire carries names of at most {ushort.MaxValue}.");
        }

        long frame = wire == WireProtocol.Native
            ? 11 + (nameEnd - 3) + (payload[nameEnd] == (byte)',' ? payload.Length - nameEnd : 2) // type, seq, name length, name, args
            : payload.Length + JsonFrameOverhead;
        if (frame > limits.MaxMessageSize)
        {
            return new FrameTooLargeException(limits.MaxMessageSize, $"The event '{eventName}' encodes to a {frame}-byte frame, over the maximum of {limits.MaxMessageSize} bytes the peer accepts; nothing was sent.");
        }

        if (strict)
        {
            return null; // one level deep, and MaxJsonDepth is at least 2
        }

        try
        {
            // The Node wire's object form nests the payload one level deeper ({"args": [...]}).
            JsonArgs.ValidateArray(payload, wire == WireProtocol.Native || wire == WireProtocol.SocketIpc ? limits.MaxJsonDepth : limits.MaxJsonDepth - 1, "arguments");
            return null;
        }
        catch (Exception ex) when (ex is DecodeException or ProtocolException)
        {
            return new EncodeException(eventName, ex);
        }
    }

    /// <summary>The name rules of <paramref name="wire"/>: socket-ipc takes any topic, even empty; the uhura wires reserve their own names.</summary>
    private static void ValidateEventName(string eventName, WireProtocol? wire)
    {
        if (wire == WireProtocol.SocketIpc)
        {
            ArgumentNullException.ThrowIfNull(eventName);
        }
        else
        {
            ValidateEventName(eventName);
        }
    }

    /// <summary>Names the Node wire uses for itself cannot be sent as application events.</summary>
    internal static void ValidateEventName(string eventName)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        if (eventName[0] == '_' || eventName.StartsWith("ack::", StringComparison.Ordinal)
            || eventName is "start" or "connect" or "invalidateSession")
        {
            throw new ArgumentException($"'{eventName}' is reserved by the uhura protocol (names starting with '_' or 'ack::', 'start', 'connect', 'invalidateSession').", nameof(eventName));
        }
    }

    /// <summary>
    /// A lower bound of the payload's size, without encoding it: <c>["name",...]</c> with each string at least one byte
    /// a character (UTF-8 never takes fewer) and anything else at least one byte.
    /// </summary>
    internal static long MinimumPayloadBytes(string? eventName, ReadOnlySpan<object?> args)
    {
        long bytes = 4 + (eventName?.Length ?? 0);
        foreach (var arg in args)
        {
            bytes += arg is string s ? s.Length + 3 : 2;
        }

        return bytes;
    }
}
