using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>One decoded native mesh frame.</summary>
internal readonly record struct MeshFrame(MeshFrameType Type, JToken? Json = null, ulong Number = 0, bool Flag = false, string? Text = null);

/// <summary>
/// The native mesh framing: <c>u32 big-endian length (type byte + body), u8 type, body</c>. Handshake and bus bodies are
/// JSON; sequence numbers are big-endian binary.
/// </summary>
internal static class NativeMeshCodec
{
    /// <summary>Frame header size: length prefix and type byte.</summary>
    public const int HeaderSize = 5;

    /// <summary>Largest handshake frame accepted before the peer is identified.</summary>
    public const int MaxHandshakeFrame = 64 * 1024;

    /// <summary>Reads one whole frame from the start of <paramref name="buffer"/>; false while it is incomplete.</summary>
    /// <exception cref="FrameTooLargeException">The declared length is over <paramref name="maxFrame"/>.</exception>
    /// <exception cref="DecodeException">The frame is malformed.</exception>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, long maxFrame, int maxDepth, out MeshFrame frame)
    {
        frame = default;
        if (buffer.Length < 4)
        {
            return false;
        }

        Span<byte> prefix = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(prefix);
        var length = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        if (length == 0)
        {
            throw new DecodeException("A mesh frame declared a length of 0.");
        }

        if (length > maxFrame)
        {
            throw new FrameTooLargeException(maxFrame);
        }

        if (buffer.Length - 4 < length)
        {
            return false;
        }

        var content = buffer.Slice(4, length);
        buffer = buffer.Slice(content.End);
        var body = content.Slice(1);
        var type = (MeshFrameType)content.FirstSpan[0];
        frame = type switch
        {
            MeshFrameType.Hello or MeshFrameType.Welcome or MeshFrameType.Claim or MeshFrameType.Confirm or MeshFrameType.Refuse
                => new MeshFrame(type, Json: ParseObject(body, maxDepth, type)),
            MeshFrameType.Keep => body.Length == 1 ? new MeshFrame(type, Flag: body.FirstSpan[0] != 0) : throw Malformed(type, "1 byte"),
            MeshFrameType.Ping => body.Length == 0 ? new MeshFrame(type) : throw Malformed(type, "no body"),
            MeshFrameType.Packet => new MeshFrame(type, Json: Parse(body, maxDepth, type)),
            MeshFrameType.Sync => body.Length == 9 ? new MeshFrame(type, Number: ReadUInt64(body), Flag: body.Slice(8).FirstSpan[0] != 0) : throw Malformed(type, "9 bytes"),
            MeshFrameType.Ack => body.Length == 8 ? new MeshFrame(type, Number: ReadUInt64(body)) : throw Malformed(type, "8 bytes"),
            MeshFrameType.Bus => body.Length > 8 ? new MeshFrame(type, Json: ParseObject(body.Slice(8), maxDepth, type), Number: ReadUInt64(body)) : throw Malformed(type, "a sequence number and a JSON body"),
            MeshFrameType.Close => new MeshFrame(type, Text: DecodeText(body)),
            _ => throw new ProtocolException($"Unknown mesh frame type {(byte)type}."),
        };
        return true;
    }

    /// <summary>A whole frame with a JSON body.</summary>
    public static byte[] Frame(MeshFrameType type, JToken json) => Frame(type, Encoding.UTF8.GetBytes(json.ToString(Formatting.None)));

    /// <summary>A whole frame with <paramref name="body"/>.</summary>
    public static byte[] Frame(MeshFrameType type, ReadOnlySpan<byte> body)
    {
        var frame = new byte[HeaderSize + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)(body.Length + 1));
        frame[4] = (byte)type;
        body.CopyTo(frame.AsSpan(HeaderSize));
        return frame;
    }

    /// <summary>A frame whose body is one number (Ack), or a number and a flag (Sync).</summary>
    public static byte[] Number(MeshFrameType type, ulong value, bool? flag = null)
    {
        Span<byte> body = stackalloc byte[9];
        BinaryPrimitives.WriteUInt64BigEndian(body, value);
        body[8] = flag == true ? (byte)1 : (byte)0;
        return Frame(type, flag is null ? body[..8] : body);
    }

    /// <summary>The per-link head of a bus frame whose JSON body (<paramref name="bodyLength"/> bytes) is shared.</summary>
    public static byte[] BusHead(ulong seq, int bodyLength)
    {
        var head = new byte[HeaderSize + 8];
        BinaryPrimitives.WriteUInt32BigEndian(head, (uint)(1 + 8 + bodyLength));
        head[4] = (byte)MeshFrameType.Bus;
        BinaryPrimitives.WriteUInt64BigEndian(head.AsSpan(HeaderSize), seq);
        return head;
    }

    private static ulong ReadUInt64(in ReadOnlySequence<byte> body)
    {
        Span<byte> bytes = stackalloc byte[8];
        body.Slice(0, 8).CopyTo(bytes);
        return BinaryPrimitives.ReadUInt64BigEndian(bytes);
    }

    private static JObject ParseObject(in ReadOnlySequence<byte> body, int maxDepth, MeshFrameType type)
        => Parse(body, maxDepth, type) as JObject ?? throw Malformed(type, "a JSON object");

    internal static JToken Parse(in ReadOnlySequence<byte> body, int maxDepth, MeshFrameType? type)
    {
        if (body.Length == 0)
        {
            throw new DecodeException(type is null ? "An empty packet." : $"A mesh {type} frame has an empty body.");
        }

        try
        {
            var text = DecodeText(body);
            using var reader = new JsonTextReader(new StringReader(text)) { MaxDepth = maxDepth, DateParseHandling = DateParseHandling.None };
            var token = JToken.ReadFrom(reader);
            if (reader.Read())
            {
                throw new DecodeException("Data after the JSON value.", Preview(text));
            }

            return token;
        }
        catch (JsonException ex)
        {
            throw new DecodeException($"Malformed JSON{(type is null ? string.Empty : $" in a mesh {type} frame")}: {ex.Message}", null, ex);
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static string DecodeText(in ReadOnlySequence<byte> body)
    {
        try
        {
            return body.IsSingleSegment ? StrictUtf8.GetString(body.FirstSpan) : StrictUtf8.GetString(body.ToArray());
        }
        catch (DecoderFallbackException ex)
        {
            throw new DecodeException("Invalid UTF-8.", null, ex);
        }
    }

    internal static string Preview(string text) => text.Length <= 200 ? text : text[..200] + "…";

    private static DecodeException Malformed(MeshFrameType type, string expected) => new($"A mesh {type} frame must carry {expected}.");
}
