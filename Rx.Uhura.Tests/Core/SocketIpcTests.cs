using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using System.Text;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Core;

/// <summary>The socket-ipc wire between .NET peers and against hand-written bytes, over temp Unix socket paths.</summary>
public sealed class SocketIpcTests : IAsyncLifetime
{
    private static readonly UhuraServerOptions ServerOptions = UhuraServerOptions.Default with { Protocol = WireProtocol.SocketIpc };
    private static readonly UhuraClientOptions ClientOptions = new() { Protocol = WireProtocol.SocketIpc };

    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-ipc-").FullName;
    private readonly List<UhuraClient> _clients = [];
    private readonly ReplaySubjectBox<Connection> _accepted = new();
    private UhuraServer _server = null!;

    private string SocketPath => Path.Combine(_dir, "ipc.sock");

    public async Task InitializeAsync()
    {
        _server = new UhuraServer(ServerOptions);
        _server.Connections.Subscribe(_accepted.Subject);
        await _server.ListenAsync("unix://" + SocketPath);
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await _server.CloseAsync().For();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<UhuraClient> ClientAsync(UhuraClientOptions? options = null)
    {
        var client = UhuraClient.Connect("unix://" + SocketPath, options ?? ClientOptions);
        _clients.Add(client);
        await client.WhenConnectedAsync().For();
        return client;
    }

    private Task<Connection> Nth(int index) => Wait.First(_accepted.Subject.Skip(index));

    [Fact]
    public async Task Topics_flow_both_ways_and_the_server_knows_the_sender_by_client_id()
    {
        var client = await ClientAsync();
        var connection = await Nth(0);
        Assert.True(Guid.TryParse(connection.Id, out _), connection.Id);
        Assert.Equal(WireProtocol.SocketIpc, connection.Wire);

        var dessert = Wait.First(_server.Event("dessert"));
        var all = Wait.First(_server.Events);
        await client.Send("dessert", new JObject { ["type"] = "cake" }).For();
        var e = await dessert;
        Assert.Equal("cake", (string?)e.Args[0]["type"]);
        Assert.Equal(connection.Id, e.Connection!.Id);
        Assert.Same(e.Connection, (await all).Connection);

        var reply = Wait.First(client.Event("hello"));
        await _server.SendTo(connection.Id, "hello", "Hello, crussell52!").For();
        Assert.Equal("Hello, crussell52!", (await reply).Arg<string>(0));
    }

    [Fact]
    public async Task Broadcast_writes_the_same_bytes_to_every_client()
    {
        await using var a = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(SocketPath));
        await using var b = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(SocketPath));
        await Nth(1);
        Assert.Equal(2, _server.Broadcast("news", new JObject { ["n"] = 1, ["s"] = "é\u0000" }));
        const string expected = "{\"topic\":\"news\",\"message\":{\"n\":1,\"s\":\"é\\u0000\"}}\0\0";
        Assert.Equal(expected, await a.ReadUntilAsync("\0\0"));
        Assert.Equal(expected, await b.ReadUntilAsync("\0\0"));
    }

    [Fact]
    public async Task A_client_writes_exactly_the_socket_ipc_frame_and_no_message_key_without_an_argument()
    {
        var client = await ClientAsync();
        var connection = await Nth(0);
        var events = connection.Events.Take(3).ToList().ToTask();
        await client.Send("x").For();
        await client.Send("", 0).For();
        await client.Send("_set", JValue.CreateNull()).For(); // socket-ipc reserves no topic
        var received = await events.For();
        Assert.Equal(["x", "", "_set"], received.Select(e => e.Name));
        Assert.Empty(received[0].Args);
        Assert.Equal(0, received[1].Arg<int>(0));
        Assert.Equal(JTokenType.Null, received[2].Args[0].Type);
        await Assert.ThrowsAsync<EncodeException>(() => client.Send("two", 1, 2));
    }

    [Fact]
    public async Task Frames_split_anywhere_or_packed_together_are_decoded()
    {
        await using var peer = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(SocketPath));
        var connection = await Nth(0);
        var events = connection.Events.Take(3).ToList().ToTask();
        var bytes = Encoding.UTF8.GetBytes("{\"topic\":\"a\",\"message\":\"héllo\"}\0\0{\"message\":[1],\"topic\":\"b\"}\0\0{\"topic\":\"c\"}\0\0");
        foreach (var b in bytes)
        {
            await peer.WriteAsync([b]);
        }

        var received = await events.For();
        Assert.Equal(["a", "b", "c"], received.Select(e => e.Name));
        Assert.Equal("héllo", received[0].Arg<string>(0));
        Assert.Equal(1, received[1].Args[0][0]!.Value<int>());
    }

    [Theory]
    [InlineData("{bad json\0\0")]
    [InlineData("\0\0")]
    [InlineData("null\0\0")]
    [InlineData("[1,2]\0\0")]
    [InlineData("{\"message\":1}\0\0")]
    [InlineData("{\"topic\":5}\0\0")]
    public async Task A_malformed_message_closes_only_that_client_with_a_DecodeException(string garbage)
    {
        var good = await ClientAsync();
        var goodConnection = await Nth(0);
        var error = Wait.First(_server.Errors);
        await using var bad = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(SocketPath));
        var badConnection = await Nth(1);
        await bad.WriteAsync(garbage);

        var decode = Assert.IsAssignableFrom<DecodeException>(await error);
        Assert.Equal(badConnection.Id, decode.ConnectionId);
        Assert.Equal(DisconnectReason.ProtocolError, (await Wait.First(badConnection.Disconnected)).Reason);

        var ping = Wait.First(goodConnection.Event("ping"));
        await good.Send("ping", 1).For();
        await ping;
        var pong = Wait.First(good.Event("pong"));
        await _server.SendTo(goodConnection.Id, "pong", 2).For();
        await pong;
    }

    [Fact]
    public async Task An_endless_frame_is_refused_at_the_size_limit()
    {
        await _server.CloseAsync().For();
        _server = new UhuraServer(ServerOptions with { Connection = ConnectionOptions.Default with { MaxMessageSize = 1024 } });
        await _server.ListenAsync("unix://" + SocketPath);
        await using var peer = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(SocketPath));
        var error = Wait.First(_server.Errors);
        await peer.WriteAsync("{\"topic\":\"x\",\"message\":\"" + new string('a', 4096));
        Assert.IsType<FrameTooLargeException>(await error);
    }

    [Fact]
    public async Task SendTo_an_unknown_or_departed_client_is_a_BadClientException()
    {
        var client = await ClientAsync();
        var connection = await Nth(0);
        var unknown = await Assert.ThrowsAsync<BadClientException>(() => _server.SendTo("no-such-client", "t", 1));
        Assert.Equal("no-such-client", unknown.ClientId);
        Assert.Equal("t", unknown.EventName);
        Assert.Equal("[1]", unknown.ArgumentsJson);

        await client.Disconnect().For();
        await Wait.First(connection.Disconnected);
        var gone = await Assert.ThrowsAsync<BadClientException>(() => _server.SendTo(connection.Id, "t", 1));
        Assert.Equal(connection.Id, gone.ClientId);
    }

    [Fact]
    public async Task After_close_sends_and_broadcasts_are_SendAfterClose_and_the_streams_complete()
    {
        var client = await ClientAsync();
        var connection = await Nth(0);
        var events = _server.Events.LastOrDefaultAsync().ToTask();
        var connections = _server.Connections.LastOrDefaultAsync().ToTask();
        await _server.CloseAsync().For();
        await events.For();
        await connections.For();
        Assert.False(File.Exists(SocketPath));
        await Assert.ThrowsAsync<SendAfterCloseException>(() => _server.SendTo(connection.Id, "t", 1));
        Assert.Throws<SendAfterCloseException>(() => _server.Broadcast("t", 1));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => _server.ListenAsync("unix://" + SocketPath));
    }

    [Fact]
    public async Task Listening_twice_is_an_error() =>
        await Assert.ThrowsAsync<InvalidOperationException>(() => _server.ListenAsync("unix://" + Path.Combine(_dir, "second.sock")));

    [Fact]
    public async Task Sending_without_a_connection_is_NoServer_unless_the_queue_is_asked_for()
    {
        var path = Path.Combine(_dir, "later.sock");
        var noQueue = UhuraClient.Connect("unix://" + path, ClientOptions with { Reconnect = ReconnectOptions.Fixed(TimeSpan.FromMilliseconds(20)) });
        var queued = UhuraClient.Connect("unix://" + path, ClientOptions with { Reconnect = ReconnectOptions.Fixed(TimeSpan.FromMilliseconds(20)), QueueWhileDisconnected = true });
        _clients.Add(noQueue);
        _clients.Add(queued);

        var error = await Assert.ThrowsAsync<NoServerException>(() => noQueue.Send("early", 1));
        Assert.Equal("early", error.EventName);
        Assert.False(noQueue.Post("early", 2));
        var early = queued.Send("early", 3);

        await using var server = new UhuraServer(ServerOptions);
        var received = server.Event("early").Take(1).ToTask();
        await server.ListenAsync("unix://" + path);
        await early.For();
        Assert.Equal(3, (await received.For()).Arg<int>(0));
    }

    [Fact]
    public async Task A_dropped_link_reconnects_and_says_so()
    {
        var states = new List<ConnectionState>();
        var client = UhuraClient.Connect("unix://" + SocketPath, ClientOptions with { Reconnect = ReconnectOptions.Fixed(TimeSpan.FromMilliseconds(20)) });
        _clients.Add(client);
        client.State.Subscribe(s => { lock (states) { states.Add(s); } });
        await client.WhenConnectedAsync().For();
        Assert.False(client.CurrentState.IsReconnect);

        var reconnected = Wait.First(client.State, s => s.Status == ConnectionStatus.Connected && s.IsReconnect);
        (await Nth(0)).Dispose(); // the server drops the link
        await reconnected;
        lock (states)
        {
            Assert.Contains(states, s => s.Status == ConnectionStatus.Disconnected);
        }

        var ping = Wait.First(_server.Event("ping"));
        await client.Send("ping").For();
        Assert.Equal((await Nth(1)).Id, (await ping).Connection!.Id);
    }

    [Fact]
    public async Task Connect_errors_are_reported_while_the_client_retries()
    {
        var path = Path.Combine(_dir, "none.sock");
        var client = UhuraClient.Connect("unix://" + path, ClientOptions with { Reconnect = ReconnectOptions.Fixed(TimeSpan.FromMilliseconds(10)) });
        _clients.Add(client);
        var retries = await client.State.Where(s => s.Status == ConnectionStatus.Reconnecting).Take(3).ToList().ToTask().For();
        Assert.All(retries, s => Assert.NotNull(s.Error));
        Assert.Equal([1, 2, 3], retries.Select(s => s.Attempt));
    }
}

/// <summary>A transcoder of its own: <c>topic TAB message-json LF</c>, to show the transcoder is pluggable.</summary>
internal sealed class TabLineTranscoder : Rx.Uhura.Protocol.ISocketIpcTranscoder
{
    public void Encode(string topic, ReadOnlySpan<byte> messageJson, bool hasMessage, System.Buffers.IBufferWriter<byte> output)
    {
        System.Buffers.BuffersExtensions.Write(output, Encoding.UTF8.GetBytes(topic + "\t"));
        if (hasMessage)
        {
            System.Buffers.BuffersExtensions.Write(output, messageJson);
        }

        System.Buffers.BuffersExtensions.Write(output, "\n"u8);
    }

    public bool TryDecode(ref System.Buffers.ReadOnlySequence<byte> buffer, long maxFrameSize, out Rx.Uhura.Protocol.SocketIpcMessage message)
    {
        var reader = new System.Buffers.SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out System.Buffers.ReadOnlySequence<byte> line, (byte)'\n'))
        {
            message = default;
            return false;
        }

        var text = Encoding.UTF8.GetString(System.Buffers.BuffersExtensions.ToArray(line));
        var tab = text.IndexOf('\t', StringComparison.Ordinal);
        if (tab < 0)
        {
            throw new DecodeException("no tab", text);
        }

        var json = text[(tab + 1)..];
        message = new Rx.Uhura.Protocol.SocketIpcMessage(text[..tab], json.Length == 0 ? null : (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes(json));
        buffer = buffer.Slice(reader.Position);
        return true;
    }
}

public sealed class SocketIpcTranscoderTests : IAsyncLifetime
{
    private static readonly ConnectionOptions Tabs = ConnectionOptions.Default with { SocketIpcTranscoder = new TabLineTranscoder() };
    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-tc-").FullName;
    private UhuraServer _server = null!;

    private string SocketPath => Path.Combine(_dir, "t.sock");

    public async Task InitializeAsync()
    {
        _server = new UhuraServer(UhuraServerOptions.Default with { Protocol = WireProtocol.SocketIpc, Connection = Tabs });
        await _server.ListenAsync("unix://" + SocketPath);
    }

    public async Task DisposeAsync()
    {
        await _server.CloseAsync().For();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Both_sides_speak_a_custom_transcoder()
    {
        await using var client = UhuraClient.Connect("unix://" + SocketPath, new UhuraClientOptions { Protocol = WireProtocol.SocketIpc, Connection = Tabs });
        await client.WhenConnectedAsync().For();
        var got = Wait.First(_server.Event("t1"));
        var bare = Wait.First(_server.Event("bare"));
        await client.Send("t1", new JObject { ["a"] = new JArray(1, 2) }).For();
        await client.Send("bare").For();
        Assert.Equal(2, (int)(await got).Args[0]["a"]![1]!);
        Assert.Empty((await bare).Args);

        var back = Wait.First(client.Event("back"));
        Assert.Equal(1, _server.Broadcast("back", "é"));
        Assert.Equal("é", (await back).Arg<string>(0));
    }

    [Fact]
    public async Task The_wire_is_the_transcoders_and_its_errors_close_only_that_client()
    {
        await using var raw = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(SocketPath));
        var got = Wait.First(_server.Event("hi"));
        await raw.WriteAsync("hi\t[1,{\"b\":true}]\n");
        Assert.True((bool)(await got).Args[0][1]!["b"]!);

        var error = Wait.First(_server.Errors);
        await raw.WriteAsync("no tab here\n");
        Assert.Equal("no tab", (await error).Message);

        await using var other = await RawPeer.ConnectAsync(Rx.Uhura.Transport.UhuraEndpoint.Unix(SocketPath));
        var invalid = Wait.First(_server.Errors);
        await other.WriteAsync("x\t{bad\n"); // the message JSON is still checked by the library
        Assert.IsAssignableFrom<DecodeException>(await invalid);
    }
}
