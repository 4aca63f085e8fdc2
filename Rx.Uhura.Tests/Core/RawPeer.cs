using System.Net;
using System.Net.Sockets;
using System.Text;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Core;

/// <summary>A bare socket speaking hand-written bytes, to test a server or client at the wire level.</summary>
internal sealed class RawPeer : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StringBuilder _received = new();
    private readonly byte[] _buffer = new byte[64 * 1024];

    private RawPeer(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public static async Task<RawPeer> ConnectAsync(EndPoint endPoint)
    {
        var socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endPoint);
        return new RawPeer(socket);
    }

    public static RawPeer Wrap(Socket socket) => new(socket);

    public Task WriteAsync(string text) => _stream.WriteAsync(Encoding.UTF8.GetBytes(text)).AsTask();

    public Task WriteAsync(byte[] bytes) => _stream.WriteAsync(bytes).AsTask();

    /// <summary>Sends the handshake a Node client sends: the session, then start.</summary>
    public Task HandshakeAsync(string session = "{}")
        => WriteAsync($"[\n[\"_set\",{session}]\n,\n[\"start\",{{\"objectMode\":true,\"enableAcks\":true}}]");

    /// <summary>Reads until the text received so far contains <paramref name="needle"/>; returns everything received.</summary>
    public async Task<string> ReadUntilAsync(string needle)
    {
        using var timeout = new CancellationTokenSource(Wait.Timeout);
        while (!_received.ToString().Contains(needle, StringComparison.Ordinal))
        {
            var n = await _stream.ReadAsync(_buffer, timeout.Token);
            if (n == 0)
            {
                throw new EndOfStreamException($"Closed before '{needle}' arrived. Received: {_received}");
            }

            _received.Append(Encoding.UTF8.GetString(_buffer, 0, n));
        }

        return _received.ToString();
    }

    /// <summary>Reads raw bytes until <paramref name="needle"/> appears among them.</summary>
    public async Task ReadBytesUntilAsync(byte[] needle)
    {
        using var timeout = new CancellationTokenSource(Wait.Timeout);
        var all = new List<byte>();
        while (all.ToArray().AsSpan().IndexOf(needle) < 0)
        {
            var n = await _stream.ReadAsync(_buffer, timeout.Token);
            if (n == 0)
            {
                throw new EndOfStreamException("Closed before the expected bytes arrived.");
            }

            all.AddRange(_buffer.AsSpan(0, n).ToArray());
        }
    }

    /// <summary>Reads until the peer closes; returns everything received.</summary>
    public async Task<string> ReadToEndAsync()
    {
        using var timeout = new CancellationTokenSource(Wait.Timeout);
        while (true)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(_buffer, timeout.Token);
            }
            catch (IOException)
            {
                n = 0;
            }

            if (n == 0)
            {
                return _received.ToString();
            }

            _received.Append(Encoding.UTF8.GetString(_buffer, 0, n));
        }
    }

    /// <summary>The whole elements received so far, parsed with the library's own framer.</summary>
    public List<JToken> Elements()
    {
        var framer = new Rx.Uhura.Protocol.JsonArrayFramer(1 << 30);
        var sequence = new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(_received.ToString()));
        var consumed = sequence.Start;
        var examined = sequence.Start;
        var list = new List<JToken>();
        while (framer.TryParseMessage(sequence.Slice(consumed), ref consumed, ref examined, out var element))
        {
            list.Add(Rx.Uhura.Protocol.NodeWireCodec.Parse(element, 64));
        }

        return list;
    }

    /// <summary>Aborts with a reset (unread data or linger 0).</summary>
    public void Destroy() => _socket.Close(0);

    /// <summary>Half-closes: FIN after everything written, while what the other side still sends can be read.</summary>
    public void EndSending() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Closes normally (FIN), as Node's <c>socket.destroy()</c> does when nothing is left unread.</summary>
    public void HangUp()
    {
        _socket.Shutdown(SocketShutdown.Both);
        _socket.Close();
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
