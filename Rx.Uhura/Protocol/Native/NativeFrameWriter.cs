using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Rx.Uhura.Protocol.Native;

/// <summary>
/// Writes native frames to an <see cref="IBufferWriter{T}"/>. Sizes are computed up front, so the length prefix is
/// written first and nothing is patched afterwards. Each method writes one whole frame, except the <c>*Header</c>
/// methods, which write everything but the trailing JSON so an already-encoded payload is copied only once, by the
/// caller, right after.
/// </summary>
/// <remarks>
/// Argument errors (a string over 65,535 UTF-8 bytes or with a lone surrogate, an empty JSON payload) throw
/// <see cref="ArgumentException"/> before anything is written.
/// </remarks>
internal static class NativeFrameWriter
{
    private const int Prefix = NativeFrameReader.LengthPrefixSize + 1; // length + type

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Writes a Hello frame (client → server). An authentication token, when not null, is written after the heartbeat
    /// interval and <see cref="NativeFeatures.Auth"/> is set.
    /// </summary>
    public static void WriteHello(IBufferWriter<byte> output, byte version, NativeFeatures features, string sessionId, ulong lastReceivedSeq, uint heartbeatIntervalMs, ReadOnlySpan<byte> sessionJson, string? token = null, string? instance = null)
    {
        var id = Utf8Length(sessionId, nameof(sessionId));
        var tokenLength = token is null ? 0 : Utf8Length(token, nameof(token));
        var instanceLength = instance is null ? 0 : Utf8Length(instance, nameof(instance));
        features = token is null ? features & ~NativeFeatures.Auth : features | NativeFeatures.Auth;
        features = instance is null ? features & ~NativeFeatures.Instance : features | NativeFeatures.Instance;
        RequireJson(sessionJson.Length, nameof(sessionJson));
        var fixedSize = 1 + 4 + 2 + id + 8 + 4 + (token is null ? 0 : 2 + tokenLength) + (instance is null ? 0 : 2 + instanceLength);
        var span = Begin(output, NativeFrameType.Hello, fixedSize, sessionJson.Length);
        span[0] = version;
        BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)features);
        var rest = WriteString(span[5..], sessionId, id);
        BinaryPrimitives.WriteUInt64BigEndian(rest, lastReceivedSeq);
        BinaryPrimitives.WriteUInt32BigEndian(rest[8..], heartbeatIntervalMs);
        rest = rest[12..];
        if (token is not null)
        {
            rest = WriteString(rest, token, tokenLength);
        }

        if (instance is not null)
        {
            rest = WriteString(rest, instance, instanceLength);
        }

        sessionJson.CopyTo(rest);
        output.Advance(Prefix + fixedSize + sessionJson.Length);
    }

    /// <summary>Writes a Welcome frame (server → client).</summary>
    public static void WriteWelcome(IBufferWriter<byte> output, byte version, NativeFeatures features, string sessionId, bool resumed, ulong lastReceivedSeq, uint heartbeatIntervalMs, ReadOnlySpan<byte> sessionJson)
    {
        var id = Utf8Length(sessionId, nameof(sessionId));
        RequireJson(sessionJson.Length, nameof(sessionJson));
        var fixedSize = 1 + 4 + 2 + id + 1 + 8 + 4;
        var span = Begin(output, NativeFrameType.Welcome, fixedSize, sessionJson.Length);
        span[0] = version;
        BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)features);
        var rest = WriteString(span[5..], sessionId, id);
        rest[0] = resumed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt64BigEndian(rest[1..], lastReceivedSeq);
        BinaryPrimitives.WriteUInt32BigEndian(rest[9..], heartbeatIntervalMs);
        sessionJson.CopyTo(rest[13..]);
        output.Advance(Prefix + fixedSize + sessionJson.Length);
    }

    /// <summary>Writes an Event frame: sequence number, name, and <paramref name="argsJson"/> (a JSON array as UTF-8).</summary>
    public static void WriteEvent(IBufferWriter<byte> output, ulong seq, string name, ReadOnlySpan<byte> argsJson)
    {
        WriteEventHeader(output, seq, name, argsJson.Length);
        output.Write(argsJson);
    }

    /// <summary>Writes an Event frame without its args; the caller writes exactly <paramref name="argsLength"/> bytes of JSON next.</summary>
    public static void WriteEventHeader(IBufferWriter<byte> output, ulong seq, string name, int argsLength)
    {
        var nameLength = Utf8Length(name, nameof(name));
        RequireJson(argsLength, nameof(argsLength));
        var fixedSize = 8 + 2 + nameLength;
        var span = Begin(output, NativeFrameType.Event, fixedSize, argsLength);
        BinaryPrimitives.WriteUInt64BigEndian(span, seq);
        WriteString(span[8..], name, nameLength);
        output.Advance(Prefix + fixedSize);
    }

    /// <summary>Writes an Event frame without its args, the name given as UTF-8 bytes (already valid: taken from an encoded payload).</summary>
    public static void WriteEventHeader(IBufferWriter<byte> output, ulong seq, ReadOnlySpan<byte> nameUtf8, int argsLength)
    {
        if (nameUtf8.Length > ushort.MaxValue)
        {
            throw new ArgumentException($"The name is {nameUtf8.Length} bytes of UTF-8; native frames carry at most {ushort.MaxValue}.", nameof(nameUtf8));
        }

        RequireJson(argsLength, nameof(argsLength));
        var fixedSize = 8 + 2 + nameUtf8.Length;
        var span = Begin(output, NativeFrameType.Event, fixedSize, argsLength);
        BinaryPrimitives.WriteUInt64BigEndian(span, seq);
        BinaryPrimitives.WriteUInt16BigEndian(span[8..], (ushort)nameUtf8.Length);
        nameUtf8.CopyTo(span[10..]);
        output.Advance(Prefix + fixedSize);
    }

    /// <summary>Writes a Set frame: sequence number and <paramref name="changesJson"/> (a JSON object as UTF-8).</summary>
    public static void WriteSet(IBufferWriter<byte> output, ulong seq, ReadOnlySpan<byte> changesJson)
    {
        WriteSetHeader(output, seq, changesJson.Length);
        output.Write(changesJson);
    }

    /// <summary>Writes a Set frame without its JSON; the caller writes exactly <paramref name="changesLength"/> bytes next.</summary>
    public static void WriteSetHeader(IBufferWriter<byte> output, ulong seq, int changesLength)
    {
        RequireJson(changesLength, nameof(changesLength));
        var span = Begin(output, NativeFrameType.Set, 8, changesLength);
        BinaryPrimitives.WriteUInt64BigEndian(span, seq);
        output.Advance(Prefix + 8);
    }

    /// <summary>Writes an Ack frame: every sequenced frame up to and including <paramref name="seq"/> was received.</summary>
    public static void WriteAck(IBufferWriter<byte> output, ulong seq) => WriteUInt64Frame(output, NativeFrameType.Ack, seq);

    /// <summary>Writes a Ping frame.</summary>
    public static void WritePing(IBufferWriter<byte> output, ulong nonce) => WriteUInt64Frame(output, NativeFrameType.Ping, nonce);

    /// <summary>Writes a Pong frame (echoing the Ping's nonce).</summary>
    public static void WritePong(IBufferWriter<byte> output, ulong nonce) => WriteUInt64Frame(output, NativeFrameType.Pong, nonce);

    /// <summary>Writes an Invalidate frame (server → client).</summary>
    public static void WriteInvalidate(IBufferWriter<byte> output, ulong seq) => WriteUInt64Frame(output, NativeFrameType.Invalidate, seq);

    /// <summary>Writes a Close frame (<paramref name="code"/> from <see cref="NativeCloseCodes"/>).</summary>
    public static void WriteClose(IBufferWriter<byte> output, ushort code, string reason)
    {
        var reasonLength = Utf8Length(reason, nameof(reason));
        var fixedSize = 2 + 2 + reasonLength;
        var span = Begin(output, NativeFrameType.Close, fixedSize, 0);
        BinaryPrimitives.WriteUInt16BigEndian(span, code);
        WriteString(span[2..], reason, reasonLength);
        output.Advance(Prefix + fixedSize);
    }

    private static void WriteUInt64Frame(IBufferWriter<byte> output, NativeFrameType type, ulong value)
    {
        var span = Begin(output, type, 8, 0);
        BinaryPrimitives.WriteUInt64BigEndian(span, value);
        output.Advance(Prefix + 8);
    }

    /// <summary>
    /// Gets room for the prefix and the <paramref name="fixedSize"/> fields (plus <paramref name="tail"/> when the
    /// caller copies the tail into the same span), writes the length and type, and returns the span after them.
    /// </summary>
    private static Span<byte> Begin(IBufferWriter<byte> output, NativeFrameType type, int fixedSize, int tail)
    {
        ArgumentNullException.ThrowIfNull(output);
        var length = 1L + fixedSize + tail;
        if (length > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(tail), "A native frame cannot exceed 4 GiB.");
        }

        // Hello and Welcome copy their JSON into this span; the other frames write their tail themselves.
        var room = Prefix + fixedSize + (type is NativeFrameType.Hello or NativeFrameType.Welcome ? tail : 0);
        var span = output.GetSpan(room);
        BinaryPrimitives.WriteUInt32BigEndian(span, (uint)length);
        span[4] = (byte)type;
        return span[Prefix..room];
    }

    /// <summary>Writes a <c>u16</c> length and the string's UTF-8; returns the span after it.</summary>
    private static Span<byte> WriteString(Span<byte> span, string value, int byteCount)
    {
        BinaryPrimitives.WriteUInt16BigEndian(span, (ushort)byteCount);
        StrictUtf8.GetBytes(value, span[2..]);
        return span[(2 + byteCount)..];
    }

    private static int Utf8Length(string value, string paramName)
    {
        ArgumentNullException.ThrowIfNull(value, paramName);
        int count;
        try
        {
            count = StrictUtf8.GetByteCount(value);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException("The string is not valid UTF-16 (it has a lone surrogate).", paramName, e);
        }

        return count <= ushort.MaxValue
            ? count
            : throw new ArgumentException($"The string is {count} bytes of UTF-8; native frames carry at most {ushort.MaxValue}.", paramName);
    }

    private static void RequireJson(int length, string paramName)
    {
        if (length <= 0)
        {
            throw new ArgumentOutOfRangeException(paramName, length, "A JSON payload cannot be empty.");
        }
    }
}
