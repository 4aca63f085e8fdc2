using System.Buffers;
using System.Net.Sockets;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;
using Rx.Uhura.Tests.Protocol;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>A hand-driven native mesh peer on a bare socket: it handshakes, then reads and writes single frames.</summary>
internal sealed class RawMeshPeer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private ReadOnlySequence<byte> _pending = ReadOnlySequence<byte>.Empty;

    private RawMeshPeer(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public string Id { get; private set; } = string.Empty;

    /// <summary>Connects to <paramref name="nodeInfo"/> and completes the handshake as node <paramref name="id"/> (keeping the link, bus synchronized from 0).</summary>
    public static async Task<RawMeshPeer> ConnectAsync(string nodeInfo, string id, string channel = "DEFAULT_CHANNEL")
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(UhuraEndpoint.Parse(nodeInfo)).For();
        var peer = new RawMeshPeer(socket) { Id = id };
        await peer.WriteAsync(NativeMeshCodec.Frame(MeshFrameType.Hello, new JObject { ["v"] = 1, ["id"] = id, ["info"] = null, ["channel"] = channel, ["inc"] = "raw-incarnation" }));
        var welcome = await peer.ReadFrameAsync();
        Assert.Equal(MeshFrameType.Welcome, welcome.Type);
        if (string.CompareOrdinal((string)welcome.Json!["id"]!, id) < 0)
        {
            await peer.WriteAsync(NativeMeshCodec.Frame(MeshFrameType.Claim, new JObject { ["lost"] = 0 }));
        }
        else
        {
            throw new InvalidOperationException("The raw peer only plays the side that is not the arbiter: give it an id above the node's.");
        }

        Assert.Equal(MeshFrameType.Confirm, (await peer.ReadFrameAsync()).Type);
        await peer.WriteAsync(NativeMeshCodec.Frame(MeshFrameType.Keep, [1]));
        await peer.WriteAsync(NativeMeshCodec.Number(MeshFrameType.Sync, 0, false));
        return peer;
    }

    public Task WriteAsync(byte[] frame) => _stream.WriteAsync(frame).AsTask();

    private readonly NativeMeshFrameReader _frames = new(16 * 1024 * 1024, 64);

    /// <summary>Reads the next frame (any type), waiting at most the test timeout.</summary>
    public async Task<MeshFrame> ReadFrameAsync()
    {
        using var timeout = new CancellationTokenSource(Wait.Timeout);
        while (true)
        {
            var buffer = _pending;
            if (_frames.TryRead(ref buffer, out var frame))
            {
                _pending = new ReadOnlySequence<byte>(buffer.ToArray());
                return frame;
            }

            var n = await _stream.ReadAsync(_buffer, timeout.Token);
            if (n == 0)
            {
                throw new EndOfStreamException("The node closed the link.");
            }

            _pending = new ReadOnlySequence<byte>([.. _pending.ToArray(), .. _buffer.AsSpan(0, n).ToArray()]);
        }
    }

    /// <summary>Reads frames until one of <paramref name="type"/> arrives.</summary>
    public async Task<MeshFrame> ReadFrameAsync(MeshFrameType type)
    {
        while (true)
        {
            var frame = await ReadFrameAsync();
            if (frame.Type == type)
            {
                return frame;
            }
        }
    }

    /// <summary>Reads frames until the node closes the link (returns normally) or the test timeout passes.</summary>
    public async Task ReadUntilClosedAsync()
    {
        try
        {
            while (true)
            {
                await ReadFrameAsync();
            }
        }
        catch (EndOfStreamException)
        {
        }
        catch (IOException)
        {
        }
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();
}
