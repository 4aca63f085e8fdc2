using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Rx.Uhura.Protocol.Native;

namespace Rx.Uhura.Tests.Protocol;

public class NativeFrameTests
{
    private const long Max = 1 << 20;

    /// <summary>One sample of every frame type (and a few variants), written by the writer.</summary>
    private static readonly Dictionary<string, (Action<IBufferWriter<byte>> Write, string Expected)> Samples = new()
    {
        ["hello"] = (
            o => NativeFrameWriter.WriteHello(o, 1, NativeFeatures.Acks | NativeFeatures.Resume, "abc", 42, 15_000, "{\"sessionID\":\"abc\",\"k\":1}"u8),
            "Hello v1 Acks, Resume id=abc last=42 hb=15000 session={\"sessionID\":\"abc\",\"k\":1}"),
        ["hello without session"] = (
            o => NativeFrameWriter.WriteHello(o, 1, NativeFeatures.None, "", 0, 0, "{}"u8),
            "Hello v1 None id= last=0 hb=0 session={}"),
        ["hello with unknown feature bits"] = (
            o => NativeFrameWriter.WriteHello(o, 1, (NativeFeatures)0x80000003, "", 0, 1, "{}"u8),
            "Hello v1 2147483651 id= last=0 hb=1 session={}"),
        ["hello with a token and an instance"] = (
            o => NativeFrameWriter.WriteHello(o, 1, NativeFeatures.Acks | NativeFeatures.Instances, "s", 0, 0, "{}"u8, "tok", "inst-1"),
            "Hello v1 Acks, Auth, Instances, Instance id=s last=0 hb=0 session={} token=tok instance=inst-1"),
        ["hello with an instance alone"] = (
            o => NativeFrameWriter.WriteHello(o, 1, NativeFeatures.Instances | NativeFeatures.Auth, "", 0, 0, "{\"k\":1}"u8, null, "é"),
            "Hello v1 Instances, Instance id= last=0 hb=0 session={\"k\":1} instance=é"),
        ["welcome resumed"] = (
            o => NativeFrameWriter.WriteWelcome(o, 1, NativeFeatures.Acks | NativeFeatures.Heartbeats | NativeFeatures.Resume, "0123456789abcdefghijklmn", true, ulong.MaxValue, 30_000, "{\"a\":[1,2]}"u8),
            "Welcome v1 Acks, Heartbeats, Resume id=0123456789abcdefghijklmn resumed=True last=18446744073709551615 hb=30000 session={\"a\":[1,2]}"),
        ["welcome fresh"] = (
            o => NativeFrameWriter.WriteWelcome(o, 1, NativeFeatures.None, "xyz", false, 0, 0, "{}"u8),
            "Welcome v1 None id=xyz resumed=False last=0 hb=0 session={}"),
        ["event"] = (
            o => NativeFrameWriter.WriteEvent(o, 7, "ping", "[1,\"two\",{\"three\":3}]"u8),
            "Event #7 name=ping args=[1,\"two\",{\"three\":3}]"),
        ["event with a non-ASCII name"] = (
            o => NativeFrameWriter.WriteEvent(o, 1, "héllo 👋", "[]"u8),
            "Event #1 name=héllo 👋 args=[]"),
        ["event with an empty name"] = (
            o => NativeFrameWriter.WriteEvent(o, 2, "", "[null]"u8),
            "Event #2 name= args=[null]"),
        ["set"] = (
            o => NativeFrameWriter.WriteSet(o, 8, "{\"k\":null,\"n\":2}"u8),
            "Set #8 changes={\"k\":null,\"n\":2}"),
        ["ack"] = (o => NativeFrameWriter.WriteAck(o, 0x0102030405060708), "Ack #72623859790382856"),
        ["ping"] = (o => NativeFrameWriter.WritePing(o, 99), "Ping nonce=99"),
        ["pong"] = (o => NativeFrameWriter.WritePong(o, ulong.MaxValue), "Pong nonce=18446744073709551615"),
        ["close"] = (o => NativeFrameWriter.WriteClose(o, NativeCloseCodes.GoingAway, "server restarting"), "Close 2 reason=server restarting"),
        ["close without reason"] = (o => NativeFrameWriter.WriteClose(o, ushort.MaxValue, ""), "Close 65535 reason="),
        ["invalidate"] = (o => NativeFrameWriter.WriteInvalidate(o, 12), "Invalidate #12"),
    };

    public static TheoryData<string> SampleNames => new(Samples.Keys);

    /// <summary>Every field of a frame, read through its typed properties.</summary>
    private static string Show(NativeFrame f) => f.Type switch
    {
        NativeFrameType.Hello => $"Hello v{f.Version} {f.Features} id={f.SessionId} last={f.LastReceivedSeq} hb={f.HeartbeatIntervalMs} session={Text(f.Session)}"
            + (f.Token is { } token ? $" token={token}" : string.Empty) + (f.Instance is { } instance ? $" instance={instance}" : string.Empty),
        NativeFrameType.Welcome => $"Welcome v{f.Version} {f.Features} id={f.SessionId} resumed={f.Resumed} last={f.LastReceivedSeq} hb={f.HeartbeatIntervalMs} session={Text(f.Session)}",
        NativeFrameType.Event => $"Event #{f.Sequence} name={f.Name} args={Text(f.Args)}",
        NativeFrameType.Set => $"Set #{f.Sequence} changes={Text(f.Changes)}",
        NativeFrameType.Ack or NativeFrameType.Invalidate => $"{f.Type} #{f.Sequence}",
        NativeFrameType.Ping or NativeFrameType.Pong => $"{f.Type} nonce={f.Nonce}",
        NativeFrameType.Close => $"Close {f.CloseCode} reason={f.Reason}",
        _ => throw new InvalidOperationException($"unexpected type {f.Type}"),
    };

    private static string Text(ReadOnlyMemory<byte> utf8) => Encoding.UTF8.GetString(utf8.Span);

    private static byte[] Bytes(Action<IBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] AllSamples() => [.. Samples.Values.SelectMany(s => Bytes(s.Write))];

    private static string[] AllExpected() => [.. Samples.Values.Select(s => s.Expected)];

    /// <summary>One read through the native wire's reader, made fresh with <paramref name="max"/>.</summary>
    private static bool TryRead(in ReadOnlySequence<byte> buffer, long max, out NativeFrame frame, out SequencePosition consumed)
    {
        consumed = buffer.Start;
        var examined = buffer.Start;
        var read = new NativeFrameReader(max).TryParseMessage(buffer, ref consumed, ref examined, out frame);
        Assert.Equal(read ? consumed : buffer.End, examined);
        return read;
    }

    private static NativeFrame ReadOne(byte[] bytes, long max = Max)
    {
        Assert.True(TryRead(new ReadOnlySequence<byte>(bytes), max, out var frame, out _));
        return frame;
    }

    /// <summary>
    /// Feeds <paramref name="chunks"/> as a pipe would: unconsumed bytes stay buffered and each chunk is appended as a
    /// new segment, so frames are read from sequences of many segments split anywhere.
    /// </summary>
    private static List<string> ReadChunks(IEnumerable<byte[]> chunks, long max = Max)
    {
        var buffered = new List<ReadOnlyMemory<byte>>();
        var result = new List<string>();
        foreach (var chunk in chunks)
        {
            buffered.Add(chunk);
            var sequence = Segments.Create(buffered);
            while (TryRead(sequence, max, out var frame, out var consumed))
            {
                result.Add(Show(frame));
                sequence = sequence.Slice(consumed);
            }

            buffered.Clear();
            foreach (var segment in sequence)
            {
                buffered.Add(segment);
            }
        }

        Assert.DoesNotContain(buffered, b => !b.IsEmpty);
        return result;
    }

    [Theory]
    [MemberData(nameof(SampleNames))]
    public void Every_frame_type_round_trips_through_the_writer_and_reader(string sample)
    {
        var (write, expected) = Samples[sample];
        var bytes = Bytes(write);
        Assert.True(TryRead(new ReadOnlySequence<byte>(bytes), Max, out var frame, out var consumed));
        Assert.Equal(expected, Show(frame));
        Assert.Equal(bytes.Length, consumed.GetInteger());
    }

    [Fact]
    public void The_length_prefix_counts_the_type_byte_and_body()
    {
        foreach (var (write, _) in Samples.Values)
        {
            var bytes = Bytes(write);
            Assert.Equal(bytes.Length - 4, (int)BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }
    }

    [Fact]
    public void An_ack_is_encoded_exactly_as_the_specification_shows()
        => Assert.Equal("000000090500000000000000FF", Convert.ToHexString(Bytes(o => NativeFrameWriter.WriteAck(o, 255))));

    [Fact]
    public void An_event_is_encoded_exactly_as_the_specification_shows()
        => Assert.Equal(
            "00000010" + "03" + "0000000000000001" + "0002" + "6869" + "5B315D",
            Convert.ToHexString(Bytes(o => NativeFrameWriter.WriteEvent(o, 1, "hi", "[1]"u8))));

    [Fact]
    public void A_hello_is_encoded_exactly_as_the_specification_shows()
        => Assert.Equal(
            "00000017" + "01" + "01" + "00000005" + "0001" + "73" + "0000000000000003" + "00003A98" + "7B7D",
            Convert.ToHexString(Bytes(o => NativeFrameWriter.WriteHello(o, 1, NativeFeatures.Acks | NativeFeatures.Resume, "s", 3, 15_000, "{}"u8))));

    [Fact]
    public void Header_writers_followed_by_the_payload_write_the_same_bytes_as_the_whole_frame_writers()
    {
        var args = "[\"a\",{\"b\":[1,2,3]}]"u8.ToArray();
        var split = new ArrayBufferWriter<byte>();
        NativeFrameWriter.WriteEventHeader(split, 5, "name", args.Length);
        split.Write(args);
        NativeFrameWriter.WriteSetHeader(split, 6, args.Length);
        split.Write(args);

        var whole = new ArrayBufferWriter<byte>();
        NativeFrameWriter.WriteEvent(whole, 5, "name", args);
        NativeFrameWriter.WriteSet(whole, 6, args);
        Assert.Equal(whole.WrittenSpan.ToArray(), split.WrittenSpan.ToArray());
    }

    [Fact]
    public void A_stream_of_frames_in_one_buffer_yields_every_frame_in_order()
        => Assert.Equal(AllExpected(), ReadChunks([AllSamples()]));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(13)]
    public void Frames_split_at_any_byte_across_segments_come_out_whole(int chunkSize)
        => Assert.Equal(AllExpected(), ReadChunks(AllSamples().Chunk(chunkSize)));

    [Fact]
    public void A_frame_plus_half_of_the_next_yields_exactly_the_whole_frame()
    {
        var first = Bytes(o => NativeFrameWriter.WriteEvent(o, 1, "first", "[1]"u8));
        var second = Bytes(o => NativeFrameWriter.WriteEvent(o, 2, "second", "[2]"u8));
        var half = second.Length / 2;
        var sequence = Segments.Create(first[..3], [.. first[3..], .. second[..2]], second[2..half]);

        Assert.True(TryRead(sequence, Max, out var frame, out var consumed));
        Assert.Equal("Event #1 name=first args=[1]", Show(frame));
        var rest = sequence.Slice(consumed);
        Assert.Equal(second[..half], rest.ToArray());

        Assert.False(TryRead(rest, Max, out _, out var none));
        Assert.Equal(rest.Start, none);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(12)]
    public void Fewer_bytes_than_a_whole_frame_read_nothing_and_consume_nothing(int available)
    {
        var bytes = Bytes(o => NativeFrameWriter.WriteAck(o, 1));
        var sequence = new ReadOnlySequence<byte>(bytes, 0, available);
        Assert.False(TryRead(sequence, Max, out var frame, out var consumed));
        Assert.Equal(sequence.Start, consumed);
        Assert.Equal(default, frame.Type);
    }

    [Fact]
    public void Event_args_are_copied_out_of_the_buffer()
    {
        var bytes = Bytes(o => NativeFrameWriter.WriteEvent(o, 1, "e", "[1]"u8));
        var frame = ReadOne(bytes);
        bytes.AsSpan().Clear();
        Assert.Equal("[1]", Text(frame.Args));
        Assert.Equal("e", frame.Name);
    }

    [Fact]
    public void A_declared_length_above_the_maximum_fails_as_soon_as_the_length_prefix_arrives()
    {
        // Only the 4-byte prefix (split over two segments) of a frame declaring 1001 bytes: the body never arrives.
        var sequence = Segments.Create([0x00, 0x00], [0x03, 0xE9]);
        var error = Assert.Throws<FrameTooLargeException>(() => TryRead(sequence, 1000, out _, out _));
        Assert.Equal(1000, error.Limit);
    }

    [Fact]
    public void A_declared_length_of_four_gigabytes_is_too_large_not_negative()
        => Assert.Throws<FrameTooLargeException>(() => TryRead(new ReadOnlySequence<byte>([0xFF, 0xFF, 0xFF, 0xFF]), Max, out _, out _));

    [Fact]
    public void A_frame_exactly_at_the_maximum_is_accepted()
    {
        var bytes = Bytes(o => NativeFrameWriter.WriteAck(o, 3));
        Assert.Equal("Ack #3", Show(ReadOne(bytes, max: 9)));
        Assert.Throws<FrameTooLargeException>(() => ReadOne(bytes, max: 8));
    }

    [Fact]
    public void A_length_of_zero_is_a_decode_error()
    {
        var error = Assert.Throws<DecodeException>(() => ReadOne([0, 0, 0, 0, 5]));
        Assert.IsType<DecodeException>(error);
        Assert.Contains("length of 0", error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    [InlineData(255)]
    public void An_unknown_frame_type_is_a_protocol_error(byte type)
    {
        var error = Assert.Throws<ProtocolException>(() => ReadOne([0, 0, 0, 9, type, 0, 0, 0, 0, 0, 0, 0, 1]));
        Assert.Contains($"type {type}", error.Message);
    }

    [Theory]
    [InlineData("ack", 7)]
    [InlineData("ping", 0)]
    [InlineData("invalidate", 5)]
    [InlineData("event", 3)]          // ends inside the sequence number
    [InlineData("event", 9)]          // ends inside the name's length
    [InlineData("event", 11)]         // ends inside the name
    [InlineData("event", 14)]         // name complete, args missing
    [InlineData("set", 8)]            // sequence number complete, changes missing
    [InlineData("close", 1)]          // ends inside the code
    [InlineData("close", 5)]          // ends inside the reason
    [InlineData("hello", 3)]          // ends inside the features
    [InlineData("hello", 20)]         // ends inside the heartbeat interval
    [InlineData("hello", 22)]         // every field but the session JSON
    [InlineData("welcome fresh", 15)] // ends inside the last received sequence number
    public void A_body_shorter_than_its_fields_is_a_decode_error(string sample, int kept)
    {
        // Keep `kept` body bytes after the type byte and declare that length, so the frame is whole but truncated.
        var bytes = Bytes(Samples[sample].Write)[..(5 + kept)];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)(bytes.Length - 4));
        var error = Assert.Throws<DecodeException>(() => ReadOne(bytes));
        Assert.NotNull(error.RawData);
    }

    [Theory]
    [InlineData("ack")]
    [InlineData("ping")]
    [InlineData("pong")]
    [InlineData("invalidate")]
    [InlineData("close")]
    public void Trailing_bytes_after_the_last_field_of_a_fixed_frame_are_a_decode_error(string sample)
    {
        var bytes = Bytes(Samples[sample].Write);
        byte[] longer = [.. bytes, 0x42];
        BinaryPrimitives.WriteUInt32BigEndian(longer, (uint)(longer.Length - 4));
        var error = Assert.Throws<DecodeException>(() => ReadOne(longer));
        Assert.Contains("unexpected byte", error.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]             // never valid
    [InlineData(new byte[] { 0xC0, 0x80 })]       // overlong NUL
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // a UTF-16 surrogate
    [InlineData(new byte[] { 0x61, 0xE2, 0x82 })] // truncated sequence
    public void An_event_name_that_is_not_valid_utf8_is_a_decode_error(byte[] name)
    {
        byte[] body = [3, 0, 0, 0, 0, 0, 0, 0, 1, 0, (byte)name.Length, .. name, (byte)'[', (byte)']'];
        byte[] frame = [0, 0, 0, (byte)body.Length, .. body];
        Assert.Contains("UTF-8", Assert.Throws<DecodeException>(() => ReadOne(frame)).Message);
        // The same, with the name split across segments.
        Assert.Throws<DecodeException>(() => ReadChunks(frame.Chunk(1)));
    }

    [Fact]
    public void A_welcome_resumed_flag_other_than_0_or_1_is_a_decode_error()
    {
        var bytes = Bytes(Samples["welcome fresh"].Write);
        var flag = 4 + 1 + 1 + 4 + 2 + 3; // prefix, type, version, features, id length, "xyz"
        bytes[flag] = 2;
        Assert.Throws<DecodeException>(() => ReadOne(bytes));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 12, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, (byte)'e' })] // event without args
    [InlineData(new byte[] { 0, 0, 0, 9, 4, 0, 0, 0, 0, 0, 0, 0, 1 })]                     // set without changes
    public void An_empty_json_payload_is_a_decode_error(byte[] frame)
        => Assert.Contains("JSON is empty", Assert.Throws<DecodeException>(() => ReadOne(frame)).Message);

    [Fact]
    public void A_string_over_65535_utf8_bytes_cannot_be_written()
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentException>(() => NativeFrameWriter.WriteEvent(output, 1, new string('é', 40_000), "[]"u8));
        Assert.Throws<ArgumentException>(() => NativeFrameWriter.WriteClose(output, 0, new string('x', 65_536)));
        Assert.Equal(0, output.WrittenCount);
        NativeFrameWriter.WriteClose(output, 0, new string('x', 65_535));
        Assert.Equal(65_535, ReadOne(output.WrittenSpan.ToArray()).Reason.Length);
    }

    [Fact]
    public void A_string_with_a_lone_surrogate_cannot_be_written()
        => Assert.Throws<ArgumentException>(() => NativeFrameWriter.WriteEvent(new ArrayBufferWriter<byte>(), 1, "a\uD800b", "[]"u8));

    [Fact]
    public void An_empty_json_payload_cannot_be_written()
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeFrameWriter.WriteEvent(output, 1, "e", []));
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeFrameWriter.WriteSet(output, 1, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => NativeFrameWriter.WriteHello(output, 1, 0, "", 0, 0, []));
        Assert.Equal(0, output.WrittenCount);
    }

    [Fact]
    public void A_property_the_frame_type_does_not_carry_throws()
    {
        var frame = ReadOne(Bytes(o => NativeFrameWriter.WriteAck(o, 1)));
        Assert.Throws<InvalidOperationException>(() => frame.Name);
        Assert.Throws<InvalidOperationException>(() => frame.Nonce);
        Assert.Throws<InvalidOperationException>(() => default(NativeFrame).Sequence);
    }

    [Fact]
    public void The_preface_is_the_magic_and_the_version()
        => Assert.Equal("0052585501", Convert.ToHexString(NativePreface.Bytes));

    [Fact]
    public void A_valid_preface_is_read_and_the_bytes_after_it_are_left()
    {
        byte[] bytes = [.. NativePreface.Bytes, 0, 0, 0, 9];
        var sequence = Segments.Create(bytes[..2], bytes[2..4], bytes[4..]);
        Assert.True(NativePreface.TryRead(sequence, out var consumed, out var version));
        Assert.Equal(1, version);
        Assert.Equal(new byte[] { 0, 0, 0, 9 }, sequence.Slice(consumed).ToArray());
    }

    [Fact]
    public void A_preface_with_another_version_is_read_for_the_caller_to_refuse()
    {
        Assert.True(NativePreface.TryRead(new ReadOnlySequence<byte>([0x00, 0x52, 0x58, 0x55, 0x07]), out _, out var version));
        Assert.Equal(7, version);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    public void A_preface_shorter_than_five_bytes_reads_nothing(int available)
    {
        var sequence = new ReadOnlySequence<byte>(NativePreface.Bytes[..available].ToArray());
        Assert.False(NativePreface.TryRead(sequence, out var consumed, out _));
        Assert.Equal(sequence.Start, consumed);
    }

    [Theory]
    [InlineData("5B0A")]       // "[\n": a Node wire client
    [InlineData("0052585601")] // wrong last magic byte
    [InlineData("52585501")]   // magic without its leading zero
    [InlineData("00FF")]       // wrong before all five bytes arrived
    public void A_wrong_magic_is_a_decode_error(string hex)
    {
        var error = Assert.Throws<DecodeException>(() => NativePreface.TryRead(new ReadOnlySequence<byte>(Convert.FromHexString(hex)), out _, out _));
        Assert.Contains("preface", error.Message);
    }
}
