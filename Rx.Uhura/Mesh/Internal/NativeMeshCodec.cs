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
/// JSON; sequence numbers are big-endian binary. Frames are read by <see cref="NativeMeshFrameReader"/>.
/// </summary>
internal static class NativeMeshCodec
{
    /// <summary>Frame header size: length prefix and type byte.</summary>
    public const int HeaderSize = 5;

    /// <summary>Largest handshake frame accepted before the peer is identified.</summary>
    public const int MaxHandshakeFrame = 64 * 1024;

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

    internal static ulong ReadUInt64(in ReadOnlySequence<byte> body)
    {
        Span<byte> bytes = stackalloc byte[8];
        body.Slice(0, 8).CopyTo(bytes);
        return BinaryPrimitives.ReadUInt64BigEndian(bytes);
    }

    internal static JObject ParseObject(in ReadOnlySequence<byte> body, int maxDepth, MeshFrameType type)
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

    internal static string DecodeText(in ReadOnlySequence<byte> body)
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

    internal static DecodeException Malformed(MeshFrameType type, string expected) => new($"A mesh {type} frame must carry {expected}.");
}
