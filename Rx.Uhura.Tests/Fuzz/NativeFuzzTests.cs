using System.Buffers;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Protocol.Native;
using Xunit.Abstractions;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>The native protocol's decoders (preface, frame reader, argument and session JSON), fuzzed as the read loop calls them.</summary>
public class NativeFuzzTests(ITestOutputHelper output)
{
    private const long MaxMessage = 4096;
    private const int MaxDepth = 16;

    [Fact]
    public void Every_mutated_native_stream_ends_in_frames_more_data_or_a_typed_error()
        => FuzzHarness.Run("native", Generate, () => new Decoder(), MaxDepth, MaxMessage, output);

    /// <summary>The preface, then frames of every type, some with JSON of the wrong shape or names that are not UTF-8.</summary>
    private static List<byte[]> Generate(Random rng)
    {
        var pieces = new List<byte[]> { rng.Next(20) == 0 ? [0x00, 0x52, 0x58, 0x55, (byte)rng.Next(4)] : NativePreface.Bytes.ToArray() };
        for (var i = rng.Next(1, 6); i > 0; i--)
        {
            var frame = new ArrayBufferWriter<byte>();
            var wrong = rng.Next(5) == 0;
            var json = Encoding.UTF8.GetBytes(wrong ? FuzzJson.AnyType(rng) : "{\"k\":" + FuzzJson.Value(rng) + "}");
            switch (rng.Next(12))
            {
                case 0:
                    NativeFrameWriter.WriteHello(frame, 1, (NativeFeatures)rng.Next(8), rng.Next(2) == 0 ? "" : "abc", (ulong)rng.NextInt64(), (uint)rng.Next(), json);
                    break;
                case 1:
                    NativeFrameWriter.WriteWelcome(frame, 1, (NativeFeatures)rng.Next(8), "abc", rng.Next(2) == 0, (ulong)rng.NextInt64(), (uint)rng.Next(), json);
                    break;
                case 2:
                    NativeFrameWriter.WriteSet(frame, (ulong)rng.Next(10), json);
                    break;
                case 3:
                    NativeFrameWriter.WriteAck(frame, (ulong)rng.NextInt64());
                    break;
                case 4:
                    NativeFrameWriter.WritePing(frame, (ulong)rng.NextInt64());
                    break;
                case 5:
                    NativeFrameWriter.WritePong(frame, (ulong)rng.NextInt64());
                    break;
                case 6:
                    NativeFrameWriter.WriteClose(frame, (ushort)rng.Next(65536), rng.Next(2) == 0 ? "" : "bye é");
                    break;
                case 7:
                    NativeFrameWriter.WriteInvalidate(frame, (ulong)rng.Next(10));
                    break;
                case 8 when wrong:
                    // A name that is not UTF-8.
                    NativeFrameWriter.WriteEventHeader(frame, 1, [0x61, 0xFF, 0xC0], 2);
                    frame.Write("[]"u8);
                    break;
                default:
                    var args = new StringBuilder("[");
                    for (var k = rng.Next(4); k > 0; k--)
                    {
                        args.Append(rng.Next(10) == 0 ? FuzzJson.Deep(rng, MaxDepth + rng.Next(-2, 2)) : FuzzJson.Value(rng)).Append(k > 1 ? "," : string.Empty);
                    }

                    NativeFrameWriter.WriteEvent(frame, (ulong)rng.Next(10), rng.Next(4) == 0 ? "héllo 👋" : "ping", Encoding.UTF8.GetBytes(wrong ? FuzzJson.AnyType(rng) : args.Append(']').ToString()));
                    break;
            }

            pieces.Add(frame.WrittenSpan.ToArray());
        }

        return pieces;
    }

    /// <summary>Mirrors <c>Connection.ReadNativeAsync</c>, <c>ReceiveNativeEvent</c> and <c>ParseJson</c> up to dispatch.</summary>
    private sealed class Decoder : IFuzzDecoder
    {
        private readonly NativeFrameReader _frames = new(MaxMessage, new Utf8NameCache());
        private bool _prefaceRead;

        public long MaxBuffered => MaxMessage + NativeFrameReader.LengthPrefixSize;

        public long Decoded { get; private set; }

        public long Feed(in ReadOnlySequence<byte> buffered)
        {
            var consumed = buffered.Start;
            if (!_prefaceRead)
            {
                if (!NativePreface.TryRead(buffered, out var afterPreface, out var version))
                {
                    return 0;
                }

                if (version != NativePreface.Version)
                {
                    throw new ProtocolException($"The peer speaks native protocol version {version}.");
                }

                consumed = afterPreface;
                _prefaceRead = true;
            }

            var steps = 0;
            var examined = consumed;
            while (_frames.TryParseMessage(buffered.Slice(consumed), ref consumed, ref examined, out var frame))
            {
                if (++steps > buffered.Length)
                {
                    throw new FuzzInvariantException($"{steps} frames from {buffered.Length} bytes");
                }

                Handle(frame);
            }

            return buffered.Slice(buffered.Start, consumed).Length;
        }

        public void End(in ReadOnlySequence<byte> rest)
        {
        }

        private void Handle(in NativeFrame frame)
        {
            Decoded++;
            switch (frame.Type)
            {
                case NativeFrameType.Event:
                    JsonArgs.ValidateArray(frame.Args.Span, MaxDepth, "arguments of an Event frame");
                    try
                    {
                        JsonArgs.Parse(frame.Args.ToArray(), MaxDepth); // what the application's read of the arguments does
                    }
                    catch (UhuraException ex)
                    {
                        throw new FuzzInvariantException("the validated arguments of an Event frame cannot be read: " + ex);
                    }

                    break;
                case NativeFrameType.Set:
                    ParseJson(frame.Changes, "Set");
                    break;
                case NativeFrameType.Hello or NativeFrameType.Welcome:
                    ParseJson(frame.Session, frame.Type.ToString());
                    break;
                case NativeFrameType.Ack or NativeFrameType.Ping or NativeFrameType.Pong or NativeFrameType.Close or NativeFrameType.Invalidate:
                    break;
                default:
                    throw new FuzzInvariantException($"a frame of type {frame.Type} was decoded");
            }
        }

        /// <summary>As <c>Connection.ParseJson&lt;JObject&gt;</c>.</summary>
        private static void ParseJson(ReadOnlyMemory<byte> json, string frame)
        {
            if (!System.Text.Unicode.Utf8.IsValid(json.Span))
            {
                throw new DecodeException($"The JSON of a {frame} frame is not valid UTF-8.");
            }

            try
            {
                using var reader = new JsonTextReader(new StringReader(Encoding.UTF8.GetString(json.Span)))
                {
                    DateParseHandling = DateParseHandling.None,
                    MaxDepth = MaxDepth,
                };
                _ = JToken.ReadFrom(reader) as JObject ?? throw new ProtocolException($"The JSON of a {frame} frame has the wrong shape.");
            }
            catch (JsonException ex)
            {
                throw new DecodeException($"The JSON of a {frame} frame is not valid: {ex.Message}", null, ex);
            }
        }
    }
}
