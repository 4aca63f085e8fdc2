using System.Buffers;
using System.Text;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Xunit.Abstractions;
using Rx.Uhura.Tests.Protocol;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>The socket-ipc decoders (delimiter cutting, frame scanner, message reader), fuzzed as the read loop calls them.</summary>
public class SocketIpcFuzzTests(ITestOutputHelper output)
{
    private const long MaxMessage = 4096;
    private const int MaxDepth = 16;

    [Fact]
    public void Every_mutated_socket_ipc_stream_ends_in_events_more_data_or_a_typed_error()
        => FuzzHarness.Run("socket-ipc", Generate, () => new Decoder(), MaxDepth, MaxMessage, output);

    /// <summary>Frames <c>{"topic":...,"message":...}\0\0</c>, some without a message, with other keys, or fields of the wrong type.</summary>
    private static List<byte[]> Generate(Random rng)
    {
        var pieces = new List<byte[]>();
        for (var i = rng.Next(1, 5); i > 0; i--)
        {
            var wrong = rng.Next(6) == 0;
            var topic = wrong && rng.Next(2) == 0 ? FuzzJson.AnyType(rng) : rng.Next(4) == 0 ? FuzzJson.String(rng) : "\"ping\"";
            var message = rng.Next(10) == 0 ? FuzzJson.Deep(rng, MaxDepth + rng.Next(-2, 2)) : FuzzJson.Value(rng);
            var json = rng.Next(6) switch
            {
                0 => $"{{\"topic\":{topic}}}",
                1 => $"{{\"message\":{message},\"topic\":{topic},\"x\":{FuzzJson.Value(rng)}}}",
                2 when wrong => FuzzJson.AnyType(rng),
                _ => $"{{\"topic\":{topic},\"message\":{message}}}",
            };
            pieces.Add([.. Encoding.UTF8.GetBytes(json), 0, 0]);
        }

        return pieces;
    }

    /// <summary>Mirrors <c>Connection.ReadSocketIpc</c> up to delivery, and the application's read of the message.</summary>
    private sealed class Decoder : IFuzzDecoder
    {
        private readonly Utf8NameCache _names = new();
        private readonly DelimitedMessageReader _frames = new(SocketIpcCodec.Delimiter, MaxMessage); // as the connection keeps it between reads

        public long MaxBuffered => MaxMessage + SocketIpcCodec.Delimiter.Length;

        public long Decoded { get; private set; }

        public long Feed(in ReadOnlySequence<byte> buffered)
        {
            var rest = buffered;
            var steps = 0;
            while (_frames.TryRead(ref rest, out var frame))
            {
                if (++steps > buffered.Length)
                {
                    throw new FuzzInvariantException($"{steps} frames from {buffered.Length} bytes");
                }

                var bytes = frame.ToArray();
                var scan = SocketIpcCodec.Scan(bytes, MaxDepth, _names);
                Decoded++;
                if (scan.MessageStart >= 0)
                {
                    if (scan.MessageStart + scan.MessageLength > bytes.Length || scan.MessageLength <= 0)
                    {
                        throw new FuzzInvariantException($"the scanner placed the message at {scan.MessageStart}+{scan.MessageLength}");
                    }

                    try
                    {
                        JsonArgs.Parse(bytes, scan.MessageStart, scan.MessageLength, -1, MaxDepth);
                    }
                    catch (UhuraException ex)
                    {
                        throw new FuzzInvariantException("the message of a validated frame cannot be read: " + ex);
                    }
                }
            }

            return buffered.Length - rest.Length;
        }

        public void End(in ReadOnlySequence<byte> rest)
        {
        }
    }
}
