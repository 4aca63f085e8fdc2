using System.Buffers;
using System.Text;
using System.Text.Unicode;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Protocol.Native;

/// <summary>
/// The native wire's <see cref="IMessageReader{TMessage}"/>: cuts frames (<c>u32 big-endian length, u8 type, body</c>)
/// out of buffered bytes and decodes them. Keeps no scan state (a frame's length comes first), only the link's
/// maximum size and its cache of event names.
/// </summary>
internal sealed class NativeFrameReader : IMessageReader<NativeFrame>
{
    /// <summary>The size of the length prefix.</summary>
    public const int LengthPrefixSize = 4;

    private const int RawDataBytes = 64;

    private readonly Utf8NameCache? _names;
    private long _maxMessageSize;

    /// <summary>A reader for one link.</summary>
    /// <param name="maxMessageSize">The largest length (type byte + body, the length prefix excluded) accepted.</param>
    /// <param name="names">Recently decoded event names, reused instead of decoding the same name again (optional).</param>
    public NativeFrameReader(long maxMessageSize, Utf8NameCache? names = null)
    {
        MaxMessageSize = maxMessageSize;
        _names = names;
    }

    /// <inheritdoc/>
    public long MaxMessageSize
    {
        get => _maxMessageSize;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxMessageSize = value;
        }
    }

    /// <summary>
    /// Reads one whole frame from the start of <paramref name="input"/>; a frame may be split across segments anywhere.
    /// </summary>
    /// <exception cref="FrameTooLargeException">The declared length exceeds <see cref="MaxMessageSize"/>; thrown once the 4-byte prefix is buffered, before the body.</exception>
    /// <exception cref="DecodeException">The length is 0 or the body is malformed (too short, trailing bytes, invalid UTF-8, empty JSON).</exception>
    /// <exception cref="ProtocolException">The type byte is not a known frame type.</exception>
    public bool TryParseMessage(in ReadOnlySequence<byte> input, ref SequencePosition consumed, ref SequencePosition examined, out NativeFrame message)
    {
        var reader = new SequenceReader<byte>(input);
        if (!reader.TryReadBigEndian(out int signedLength))
        {
            return Incomplete(input, out message, ref examined);
        }

        var length = (uint)signedLength;
        if (length == 0)
        {
            throw new DecodeException("A native frame declared a length of 0; every frame has at least its type byte.", Hex(input));
        }

        if (length > _maxMessageSize)
        {
            throw new FrameTooLargeException(_maxMessageSize);
        }

        if (reader.Remaining < length)
        {
            return Incomplete(input, out message, ref examined);
        }

        var content = input.Slice(reader.Position, length);
        message = Decode(content, _names);
        consumed = content.End;
        examined = consumed;
        return true;
    }

    private static bool Incomplete(in ReadOnlySequence<byte> input, out NativeFrame frame, ref SequencePosition examined)
    {
        frame = default;
        examined = input.End;
        return false;
    }

    private static NativeFrame ReadHello(ref Body body)
    {
        var version = body.ReadByte("version");
        var features = (NativeFeatures)body.ReadUInt32("features");
        var sessionId = body.ReadString("session id");
        var lastReceived = body.ReadUInt64("last received sequence number");
        var heartbeat = body.ReadUInt32("heartbeat interval");
        var token = (features & NativeFeatures.Auth) != 0 ? body.ReadString("authentication token") : null;
        var instance = (features & NativeFeatures.Instance) != 0 ? body.ReadString("instance id") : null;
        return NativeFrame.CreateHello(version, features, sessionId, lastReceived, heartbeat, body.ReadJsonToEnd("session"), token, instance);
    }

    /// <summary>Decodes the type byte and body of one frame.</summary>
    private static NativeFrame Decode(in ReadOnlySequence<byte> content, Utf8NameCache? names)
    {
        var body = new Body(content);
        var frame = body.Type switch
        {
            NativeFrameType.Hello => ReadHello(ref body),
            NativeFrameType.Welcome => NativeFrame.CreateWelcome(
                body.ReadByte("version"),
                (NativeFeatures)body.ReadUInt32("features"),
                body.ReadString("session id"),
                body.ReadBoolean("resumed"),
                body.ReadUInt64("last received sequence number"),
                body.ReadUInt32("heartbeat interval"),
                body.ReadJsonToEnd("session")),
            NativeFrameType.Event => NativeFrame.CreateEvent(body.ReadUInt64("sequence number"), body.ReadString("name", names), body.ReadJsonToEnd("args")),
            NativeFrameType.Set => NativeFrame.CreateSet(body.ReadUInt64("sequence number"), body.ReadJsonToEnd("changes")),
            NativeFrameType.Ack => NativeFrame.CreateAck(body.ReadUInt64("sequence number")),
            NativeFrameType.Ping => NativeFrame.CreatePing(body.ReadUInt64("nonce")),
            NativeFrameType.Pong => NativeFrame.CreatePong(body.ReadUInt64("nonce")),
            NativeFrameType.Close => NativeFrame.CreateClose(body.ReadUInt16("code"), body.ReadString("reason")),
            NativeFrameType.Invalidate => NativeFrame.CreateInvalidate(body.ReadUInt64("sequence number")),
            _ => throw new ProtocolException($"Unknown native frame type {(byte)body.Type} (0x{(byte)body.Type:x2})."),
        };
        body.EnsureEnd();
        return frame;
    }

    private static string Hex(in ReadOnlySequence<byte> bytes)
        => Convert.ToHexString(bytes.Slice(0, Math.Min(bytes.Length, RawDataBytes)).ToArray());

    /// <summary>Reads the fields of one frame's body; every failure is a <see cref="DecodeException"/> naming the frame and field.</summary>
    private ref struct Body
    {
        private readonly ReadOnlySequence<byte> _content;
        private SequenceReader<byte> _reader;

        public Body(in ReadOnlySequence<byte> content)
        {
            _content = content;
            _reader = new SequenceReader<byte>(content);
            _reader.TryRead(out var type); // content is never empty: length 0 was rejected
            Type = (NativeFrameType)type;
        }

        public NativeFrameType Type { get; }

        public byte ReadByte(string field) => _reader.TryRead(out var value) ? value : throw Truncated(field);

        public bool ReadBoolean(string field) => ReadByte(field) switch
        {
            0 => false,
            1 => true,
            var other => throw Malformed($"its {field} flag is {other}, not 0 or 1"),
        };

        public ushort ReadUInt16(string field) => _reader.TryReadBigEndian(out short value) ? (ushort)value : throw Truncated(field);

        public uint ReadUInt32(string field) => _reader.TryReadBigEndian(out int value) ? (uint)value : throw Truncated(field);

        public ulong ReadUInt64(string field) => _reader.TryReadBigEndian(out long value) ? (ulong)value : throw Truncated(field);

        /// <summary>A <c>u16</c> byte count and that many bytes of strict UTF-8.</summary>
        public string ReadString(string field, Utf8NameCache? cache = null)
        {
            int length = ReadUInt16(field);
            if (length == 0)
            {
                return string.Empty;
            }

            if (_reader.Remaining < length)
            {
                throw Truncated(field);
            }

            var unread = _reader.UnreadSpan;
            string value;
            if (unread.Length >= length)
            {
                var bytes = unread[..length];
                if (cache is null)
                {
                    value = DecodeUtf8(bytes, field);
                }
                else if (cache.TryGet(bytes) is { } known)
                {
                    value = known;
                }
                else
                {
                    value = DecodeUtf8(bytes, field);
                    cache.Add(bytes, value);
                }
            }
            else
            {
                // Split across segments: gather it first.
                var rented = ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    var bytes = rented.AsSpan(0, length);
                    _reader.TryCopyTo(bytes);
                    value = DecodeUtf8(bytes, field);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(rented);
                }
            }

            _reader.Advance(length);
            return value;
        }

        /// <summary>The rest of the frame, copied out (the pipe buffer is released after parsing). Must not be empty.</summary>
        public ReadOnlyMemory<byte> ReadJsonToEnd(string field)
        {
            if (_reader.End)
            {
                throw Malformed($"its {field} JSON is empty");
            }

            var json = _reader.UnreadSequence.ToArray();
            _reader.AdvanceToEnd();
            return json;
        }

        public readonly void EnsureEnd()
        {
            if (!_reader.End)
            {
                throw Malformed($"{_reader.Remaining} unexpected byte(s) follow its last field");
            }
        }

        private readonly string DecodeUtf8(ReadOnlySpan<byte> bytes, string field)
            => Utf8.IsValid(bytes) ? Encoding.UTF8.GetString(bytes) : throw Malformed($"its {field} is not valid UTF-8");

        private readonly DecodeException Truncated(string field) => Malformed($"it ends before its {field}");

        private readonly DecodeException Malformed(string what)
            => new($"Malformed native {Type} frame ({_content.Length} bytes after the length prefix): {what}.", Hex(_content));
    }
}
