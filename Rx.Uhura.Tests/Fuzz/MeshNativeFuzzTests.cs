using System.Buffers;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh.Internal;
using Xunit.Abstractions;
using Rx.Uhura.Tests.Protocol;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>The native mesh wire's decoder, fuzzed as <c>MeshLink.ReadFrames</c> calls it.</summary>
public class MeshNativeFuzzTests(ITestOutputHelper output)
{
    private const int MaxPacket = 4096;
    private const int MaxDepth = 16;

    /// <summary>The limit once linked, as <c>MeshLink.ReadFrames</c> computes it.</summary>
    private const long LinkedMax = MaxPacket + 64;

    [Fact]
    public void Every_mutated_mesh_stream_ends_in_frames_more_data_or_a_typed_error()
        => FuzzHarness.Run("native mesh", Generate, () => new Decoder(), MaxDepth, LinkedMax, output);

    /// <summary>A handshake frame, then frames of every type, some with bodies of the wrong size or JSON of the wrong shape.</summary>
    private static List<byte[]> Generate(Random rng)
    {
        var pieces = new List<byte[]> { NativeMeshCodec.Frame(MeshFrameType.Hello, JObject.Parse("{\"id\":\"n1\",\"v\":1}")) };
        for (var i = rng.Next(1, 6); i > 0; i--)
        {
            var wrong = rng.Next(5) == 0;
            var json = Encoding.UTF8.GetBytes(wrong ? FuzzJson.AnyType(rng) : "{\"k\":" + (rng.Next(10) == 0 ? FuzzJson.Deep(rng, MaxDepth + rng.Next(-3, 1)) : FuzzJson.Value(rng)) + "}");
            var type = (MeshFrameType)rng.Next(1, 13);
            pieces.Add(type switch
            {
                MeshFrameType.Keep => NativeMeshCodec.Frame(type, wrong ? [] : [(byte)rng.Next(2)]),
                MeshFrameType.Ping => NativeMeshCodec.Frame(type, wrong ? [1] : []),
                MeshFrameType.Sync => NativeMeshCodec.Number(type, (ulong)rng.NextInt64(), wrong ? null : rng.Next(2) == 0),
                MeshFrameType.Ack => NativeMeshCodec.Number(type, (ulong)rng.NextInt64(), wrong ? true : null),
                MeshFrameType.Bus => [.. NativeMeshCodec.BusHead((ulong)rng.NextInt64(), json.Length), .. json],
                MeshFrameType.Close => NativeMeshCodec.Frame(type, wrong ? [0xC3, 0x28] : "bye"u8),
                MeshFrameType.Packet => NativeMeshCodec.Frame(type, Encoding.UTF8.GetBytes(FuzzJson.Value(rng))),
                _ => NativeMeshCodec.Frame(type, json),
            });
        }

        return pieces;
    }

    /// <summary>Mirrors <c>MeshLink.ReadLoopAsync</c>/<c>ReadFrames</c>: the handshake limit until a Hello or Welcome is read.</summary>
    private sealed class Decoder : IFuzzDecoder
    {
        private readonly NativeMeshFrameReader _frames = new(NativeMeshCodec.MaxHandshakeFrame, MaxDepth);
        private bool _linked;

        public long MaxBuffered => NativeMeshCodec.MaxHandshakeFrame + 4;

        public long Decoded { get; private set; }

        public long Feed(in ReadOnlySequence<byte> buffered)
        {
            var buffer = buffered;
            var max = _linked ? LinkedMax : NativeMeshCodec.MaxHandshakeFrame;
            var steps = 0;
            _frames.MaxMessageSize = max;
            while (_frames.TryRead(ref buffer, out var frame))
            {
                if (++steps > buffered.Length)
                {
                    throw new FuzzInvariantException($"{steps} frames from {buffered.Length} bytes");
                }

                Check(frame);
                Decoded++;
                _linked |= frame.Type is MeshFrameType.Hello or MeshFrameType.Welcome;
            }

            return buffered.Length - buffer.Length;
        }

        public void End(in ReadOnlySequence<byte> rest)
        {
            if (!rest.IsEmpty)
            {
                throw new DecodeException($"The peer closed the link in the middle of a frame ({rest.Length} bytes left).");
            }
        }

        private static void Check(MeshFrame frame)
        {
            var ok = frame.Type switch
            {
                MeshFrameType.Hello or MeshFrameType.Welcome or MeshFrameType.Claim or MeshFrameType.Confirm or MeshFrameType.Refuse or MeshFrameType.Bus => frame.Json is JObject,
                MeshFrameType.Packet => frame.Json is not null,
                MeshFrameType.Close => frame.Text is not null,
                MeshFrameType.Keep or MeshFrameType.Ping or MeshFrameType.Sync or MeshFrameType.Ack => true,
                _ => false,
            };
            if (!ok)
            {
                throw new FuzzInvariantException($"decoded {frame}");
            }
        }
    }
}
