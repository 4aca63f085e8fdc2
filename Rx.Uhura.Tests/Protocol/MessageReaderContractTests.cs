using System.Buffers;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;

namespace Rx.Uhura.Tests.Protocol;

/// <summary>
/// One contract, every wire: each link reads through <see cref="IMessageReader{TMessage}"/>, so each wire's reader
/// passes the same tests. A stream fed in any split (one byte at a time, seeded random reads, a message plus half of
/// the next, segments joined anywhere) yields exactly its messages in order; a false return has examined everything;
/// a message exactly at the maximum is read and one byte over is refused; and a message far over the maximum is
/// refused before the link buffers much more than the maximum.
/// </summary>
public sealed class MessageReaderContractTests
{
    public static TheoryData<string> Wires => new(WireCase.All.Keys);

    [Theory]
    [MemberData(nameof(Wires))]
    public void A_stream_fed_one_byte_at_a_time_yields_exactly_its_messages_in_order(string wire)
    {
        var c = WireCase.All[wire];
        var (stream, expected) = c.Stream(40, new Random(1));
        Assert.Equal(expected, c.Feed(Chunks(stream, _ => 1), 1 << 20));
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public void A_stream_fed_in_seeded_random_reads_yields_exactly_its_messages_in_order(string wire)
    {
        var c = WireCase.All[wire];
        for (var seed = 0; seed < 60; seed++)
        {
            var random = new Random(seed);
            var (stream, expected) = c.Stream(random.Next(1, 30), random);
            var sizes = new Random(seed + 1000);
            var chunks = Chunks(stream, _ => sizes.Next(1, seed % 3 == 0 ? 8 : 200));
            Assert.Equal(expected, c.Feed(chunks, 1 << 20));
        }
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public void A_message_plus_half_of_the_next_yields_exactly_the_first(string wire)
    {
        var c = WireCase.All[wire];
        var first = c.Message("first", 10);
        var second = c.Message("second", 10);
        byte[] bytes = [.. c.Prefix, .. first.Bytes, .. c.Separator, .. second.Bytes.AsSpan(0, second.Bytes.Length / 2)];
        Assert.Equal([first.Shown], c.Feed([bytes], 1 << 20));
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public void A_message_exactly_at_the_maximum_is_read_and_one_byte_over_is_refused(string wire)
    {
        var c = WireCase.All[wire];
        var message = c.Message("edge", 300);
        byte[] bytes = [.. c.Prefix, .. message.Bytes, .. c.Separator];
        Assert.Equal([message.Shown], c.Feed([bytes], message.Measured));
        Assert.Equal([message.Shown], c.Feed(Chunks(bytes, _ => 1), message.Measured));

        var error = Assert.Throws<FrameTooLargeException>(() => c.Feed([bytes], message.Measured - 1));
        Assert.Equal(message.Measured - 1, error.Limit);
        Assert.Throws<FrameTooLargeException>(() => c.Feed(Chunks(bytes, _ => 1), message.Measured - 1));
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public void A_message_far_over_the_maximum_is_refused_before_much_more_than_the_maximum_is_buffered(string wire)
    {
        var c = WireCase.All[wire];
        const long Max = 1000;
        var message = c.Message("huge", 20_000);
        byte[] bytes = [.. c.Prefix, .. message.Bytes];
        var fed = 0;
        Assert.Throws<FrameTooLargeException>(() => c.Feed(Chunks(bytes, _ => 1).Select(b => { fed++; return b; }), Max));
        Assert.InRange(fed, 1, c.Prefix.Length + Max + 16);
    }

    [Fact]
    public void A_socket_ipc_frame_without_a_message_key_reads_as_no_message_not_an_empty_one()
    {
        // {"topic":"t"} with no "message": the event has no argument (an empty JSON text would be unreadable).
        var frame = new ReadOnlySequence<byte>("{\"topic\":\"t\"}\0\0"u8.ToArray());
        Assert.True(new SocketIpcMessageReader(null, 100, 64, new Utf8NameCache()).TryRead(ref frame, out var read));
        Assert.Equal(("t", false), (read.Topic, read.MessageJson.HasValue));

        var again = new ReadOnlySequence<byte>("{\"topic\":\"t\"}\0\0"u8.ToArray());
        Assert.True(JsonSocketIpcTranscoder.Instance.TryDecode(ref again, 100, out var decoded));
        Assert.Equal(("t", false), (decoded.Topic, decoded.MessageJson.HasValue));
        Assert.True(again.IsEmpty);
    }

    private static IEnumerable<byte[]> Chunks(byte[] bytes, Func<int, int> size)
    {
        for (int at = 0, i = 0; at < bytes.Length; i++)
        {
            var n = Math.Min(Math.Max(1, size(i)), bytes.Length - at);
            yield return bytes[at..(at + n)];
            at += n;
        }
    }

    /// <summary>One wire: how its messages look on the wire, and its reader driven as a link drives it.</summary>
    private abstract class WireCase
    {
        public static readonly Dictionary<string, WireCase> All = new()
        {
            ["native"] = new Case<NativeFrame>(
                max => new NativeFrameReader(max, new Utf8NameCache()),
                f => f.Name + ":" + Encoding.UTF8.GetString(f.Args.Span),
                (name, payload) =>
                {
                    var args = Encoding.UTF8.GetBytes(new JArray(payload).ToString(Newtonsoft.Json.Formatting.None));
                    var output = new ArrayBufferWriter<byte>();
                    NativeFrameWriter.WriteEvent(output, 1, name, args);
                    return (output.WrittenSpan.ToArray(), output.WrittenCount - NativeFrameReader.LengthPrefixSize, name + ":" + Encoding.UTF8.GetString(args));
                }),
            ["node uhura"] = new Case<ReadOnlySequence<byte>>(
                max => new JsonArrayFramer(max),
                e => Encoding.UTF8.GetString(e),
                (name, payload) =>
                {
                    var text = new JArray(name, payload).ToString(Newtonsoft.Json.Formatting.None);
                    var bytes = Encoding.UTF8.GetBytes(text);
                    return (bytes, bytes.Length, text);
                })
            {
                Prefix = NodeWireCodec.OpenArray.ToArray(),
                Separator = NodeWireCodec.Separator.ToArray(),
            },
            ["socket-ipc"] = new Case<SocketIpcMessage>(
                max => new SocketIpcMessageReader(null, max, 64, new Utf8NameCache()),
                m => m.Topic + ":" + (m.MessageJson is { } json ? Encoding.UTF8.GetString(json.Span) : "-"),
                (name, payload) =>
                {
                    var message = new JValue(payload).ToString(Newtonsoft.Json.Formatting.None);
                    var output = new ArrayBufferWriter<byte>();
                    JsonSocketIpcTranscoder.Instance.Encode(name, Encoding.UTF8.GetBytes(message), true, output);
                    return (output.WrittenSpan.ToArray(), output.WrittenCount - SocketIpcCodec.Delimiter.Length, name + ":" + message);
                }),
            ["native mesh"] = new Case<MeshFrame>(
                max => new NativeMeshFrameReader(max, 64),
                f => f.Json!.ToString(Newtonsoft.Json.Formatting.None),
                (name, payload) =>
                {
                    var json = new JArray(name, payload);
                    var bytes = NativeMeshCodec.Frame(MeshFrameType.Packet, json);
                    return (bytes, bytes.Length - 4, json.ToString(Newtonsoft.Json.Formatting.None));
                }),
            ["masterless"] = new Case<JToken>(
                max => new MasterlessPacketReader(max, 64),
                t => t.ToString(Newtonsoft.Json.Formatting.None),
                (name, payload) =>
                {
                    var json = new JArray(name, payload);
                    var bytes = MasterlessCodec.Encode(json);
                    return (bytes, bytes.Length - 2, json.ToString(Newtonsoft.Json.Formatting.None));
                }),
        };

        /// <summary>Bytes before the first message (the Node wire's opening bracket).</summary>
        public byte[] Prefix { get; init; } = [];

        /// <summary>Bytes between two messages (the Node wire's comma).</summary>
        public byte[] Separator { get; init; } = [];

        /// <summary>One message whose payload is <paramref name="size"/> characters (some of them needing escapes): its bytes, its size as the wire measures it, and how it reads back.</summary>
        public abstract (byte[] Bytes, long Measured, string Shown) Message(string name, int size);

        /// <summary>Feeds the chunks as a pipe would (unconsumed bytes stay, each read appends a segment); returns what was read.</summary>
        public abstract List<string> Feed(IEnumerable<byte[]> chunks, long max);

        public (byte[] Stream, string[] Expected) Stream(int count, Random random)
        {
            var bytes = new List<byte>(Prefix);
            var expected = new List<string>();
            for (var i = 0; i < count; i++)
            {
                var message = Message("e" + i, random.Next(0, 3) == 0 ? random.Next(100, 3000) : random.Next(0, 20));
                if (i > 0)
                {
                    bytes.AddRange(Separator);
                }

                bytes.AddRange(message.Bytes);
                expected.Add(message.Shown);
            }

            return ([.. bytes], [.. expected]);
        }

        private sealed class Case<T>(Func<long, IMessageReader<T>> make, Func<T, string> show, Func<string, string, (byte[], long, string)> message) : WireCase
        {
            public override (byte[] Bytes, long Measured, string Shown) Message(string name, int size)
            {
                var payload = new StringBuilder(size);
                for (var i = 0; i < size; i++)
                {
                    payload.Append(i % 17 == 16 ? '"' : i % 29 == 28 ? '\\' : (char)('a' + (i % 26)));
                }

                return message(name, payload.ToString());
            }

            public override List<string> Feed(IEnumerable<byte[]> chunks, long max)
            {
                var reader = make(max);
                Assert.Equal(max, reader.MaxMessageSize);
                var buffered = new List<ReadOnlyMemory<byte>>();
                var read = new List<string>();
                foreach (var chunk in chunks)
                {
                    buffered.Add(chunk);
                    var buffer = Segments.Create(buffered);
                    var consumed = buffer.Start;
                    var examined = buffer.Start;
                    while (reader.TryParseMessage(buffer.Slice(consumed), ref consumed, ref examined, out var m))
                    {
                        Assert.Equal(consumed, examined);
                        read.Add(show(m));
                    }

                    Assert.Equal(buffer.End, examined); // false: every byte was looked at, wait for more
                    // What is left stays buffered, in 7-byte segments: messages straddle segments everywhere.
                    buffered = [.. buffer.Slice(consumed).ToArray().Chunk(7).Select(part => (ReadOnlyMemory<byte>)part)];
                }

                return read;
            }
        }
    }
}
