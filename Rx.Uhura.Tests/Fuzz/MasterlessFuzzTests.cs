using System.Buffers;
using System.Text;
using Rx.Uhura.Mesh.Internal;
using Xunit.Abstractions;
using Rx.Uhura.Tests.Protocol;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>The masterless wire's decoder, fuzzed as <c>MeshLink.ReadPackets</c> calls it (and its tail read at the end of the stream).</summary>
public class MasterlessFuzzTests(ITestOutputHelper output)
{
    private const int MaxPacket = 4096;
    private const int MaxDepth = 16;

    [Fact]
    public void Every_mutated_masterless_stream_ends_in_packets_more_data_or_a_typed_error()
        => FuzzHarness.Run("masterless", Generate, () => new Decoder(), MaxDepth, MaxPacket, output);

    /// <summary>Packets of JSON and <c>\r\n</c>: id packets, messages, values of any type, deep values; sometimes no last <c>\r\n</c>.</summary>
    private static List<byte[]> Generate(Random rng)
    {
        var pieces = new List<byte[]>();
        for (var i = rng.Next(1, 6); i > 0; i--)
        {
            var json = rng.Next(5) switch
            {
                0 => "{\"id\":\"n1\",\"uhura\":1}",
                1 => FuzzJson.AnyType(rng),
                2 => FuzzJson.Deep(rng, MaxDepth + rng.Next(-3, 2)),
                _ => "{\"type\":\"message\",\"data\":" + FuzzJson.Value(rng) + "}",
            };
            pieces.Add(Encoding.UTF8.GetBytes(json + (i == 1 && rng.Next(4) == 0 ? string.Empty : "\r\n")));
        }

        return pieces;
    }

    /// <summary>Mirrors <c>MeshLink.ReadLoopAsync</c>/<c>ReadPackets</c>: the handshake limit until the first packet is read.</summary>
    private sealed class Decoder : IFuzzDecoder
    {
        private bool _linked;
        private readonly MasterlessPacketReader _packets = new(NativeMeshCodec.MaxHandshakeFrame, MaxDepth); // as the link keeps it between reads

        public long MaxBuffered => NativeMeshCodec.MaxHandshakeFrame + 2;

        public long Decoded { get; private set; }

        public long Feed(in ReadOnlySequence<byte> buffered)
        {
            var buffer = buffered;
            var max = _linked ? MaxPacket : NativeMeshCodec.MaxHandshakeFrame;
            var steps = 0;
            _packets.MaxMessageSize = max;
            while (_packets.TryRead(ref buffer, out var packet))
            {
                if (++steps > buffered.Length || packet is null)
                {
                    throw new FuzzInvariantException($"{steps} packets from {buffered.Length} bytes, the last {packet}");
                }

                Decoded++;
                _linked = true;
            }

            return buffered.Length - buffer.Length;
        }

        public void End(in ReadOnlySequence<byte> rest)
        {
            if (_packets.TryParseLast(rest, out var tail))
            {
                Decoded += tail is null ? throw new FuzzInvariantException("a null tail") : 1;
            }
        }
    }
}
