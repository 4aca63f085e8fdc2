using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Mesh;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Core;

/// <summary>The in-memory transport: its streams behave like sockets, and servers, clients and nodes run over <c>memory://</c>.</summary>
public sealed class MemoryTransportTests
{
    private static readonly ReconnectOptions Fast = new() { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) };

    private static string UniqueUri() => "memory://test-" + Guid.NewGuid().ToString("N");

    private static async Task<(Stream Client, Stream Server, ITransportListener Listener)> PairAsync(MemoryTransport transport)
    {
        var listener = await transport.BindAsync(new MemoryEndPoint("pair"));
        var client = await transport.ConnectAsync(new MemoryEndPoint("pair"));
        var server = (await listener.AcceptAsync().AsTask().For())!;
        return (client, server, listener);
    }

    private static async Task<byte[]> ReadExactlyAsync(Stream stream, int count)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer).AsTask().For();
        return buffer;
    }

    [Fact]
    public void Memory_uris_parse_to_a_memory_endpoint_and_format_back()
    {
        var endPoint = Assert.IsType<MemoryEndPoint>(UhuraEndpoint.Parse("memory://orders service"));
        Assert.Equal("orders service", endPoint.Name);
        Assert.Equal("memory://orders%20service", UhuraEndpoint.Format(endPoint));
        Assert.Equal(endPoint, UhuraEndpoint.Parse(UhuraEndpoint.Format(endPoint)));
        Assert.False(UhuraEndpoint.TryParse("memory://", out _));
    }

    [Fact]
    public async Task Bytes_flow_both_ways_between_a_connected_stream_and_the_accepted_one()
    {
        var transport = new MemoryTransport();
        var (client, server, listener) = await PairAsync(transport);
        await using var _ = listener;
        await client.WriteAsync(Encoding.UTF8.GetBytes("hello")).AsTask().For();
        Assert.Equal("hello", Encoding.UTF8.GetString(await ReadExactlyAsync(server, 5)));
        await server.WriteAsync(Encoding.UTF8.GetBytes("back")).AsTask().For();
        Assert.Equal("back", Encoding.UTF8.GetString(await ReadExactlyAsync(client, 4)));
    }

    [Fact]
    public async Task Connecting_to_a_name_nobody_listens_on_is_refused_like_a_tcp_connect()
    {
        var error = await Assert.ThrowsAsync<SocketException>(() => new MemoryTransport().ConnectAsync(new MemoryEndPoint("nobody")).AsTask());
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
        Assert.Contains("memory://nobody", error.Message);
    }

    [Fact]
    public async Task Listening_twice_on_one_name_fails_with_address_in_use_and_the_first_listener_keeps_it()
    {
        var transport = new MemoryTransport();
        await using var first = await transport.BindAsync(new MemoryEndPoint("taken"));
        var error = await Assert.ThrowsAsync<SocketException>(() => transport.BindAsync(new MemoryEndPoint("taken")).AsTask());
        Assert.Equal(SocketError.AddressAlreadyInUse, error.SocketErrorCode);
        await using var client = await transport.ConnectAsync(new MemoryEndPoint("taken"));
        Assert.NotNull(await first.AcceptAsync().AsTask().For());
    }

    [Fact]
    public async Task Closing_the_listener_refuses_new_connects_resets_unaccepted_ones_and_frees_the_name()
    {
        var transport = new MemoryTransport();
        var listener = await transport.BindAsync(new MemoryEndPoint("closing"));
        await using var waiting = await transport.ConnectAsync(new MemoryEndPoint("closing"));
        var pendingAccept = listener.AcceptAsync().AsTask();
        Assert.NotNull(await pendingAccept.For()); // the first is accepted; the next one waits in the backlog
        await using var notAccepted = await transport.ConnectAsync(new MemoryEndPoint("closing"));
        await listener.DisposeAsync();

        Assert.Null(await listener.AcceptAsync().AsTask().For());
        await Assert.ThrowsAsync<IOException>(() => notAccepted.ReadAsync(new byte[1]).AsTask().For());
        var refused = await Assert.ThrowsAsync<SocketException>(() => transport.ConnectAsync(new MemoryEndPoint("closing")).AsTask());
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        Assert.False(transport.IsListening("closing"));
        await using var again = await transport.BindAsync(new MemoryEndPoint("closing"));
    }

    [Fact]
    public async Task Disposing_one_end_ends_the_peers_reads_after_the_data_and_fails_its_writes()
    {
        var transport = new MemoryTransport();
        var (client, server, listener) = await PairAsync(transport);
        await using var _ = listener;
        var pendingRead = server.ReadAsync(new byte[8]).AsTask();
        await client.WriteAsync(new byte[] { 1, 2, 3 }).AsTask().For();
        Assert.Equal(3, await pendingRead.For());
        var readAtEnd = server.ReadAsync(new byte[8]).AsTask();
        await client.DisposeAsync();
        Assert.Equal(0, await readAtEnd.For());
        await Assert.ThrowsAsync<IOException>(() => server.WriteAsync(new byte[] { 4 }).AsTask().For());
        await server.DisposeAsync();
    }

    [Fact]
    public async Task Disposing_an_end_during_its_own_pending_read_wakes_that_read()
    {
        var transport = new MemoryTransport();
        var (client, server, listener) = await PairAsync(transport);
        await using var _ = listener;
        var pendingRead = client.ReadAsync(new byte[8]).AsTask();
        await client.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pendingRead.For());
        Assert.Equal(0, await server.ReadAsync(new byte[8]).AsTask().For());
    }

    [Fact]
    public async Task A_half_closed_end_sends_the_end_of_stream_and_still_reads_the_reply()
    {
        var transport = new MemoryTransport();
        var (client, server, listener) = await PairAsync(transport);
        await using var _ = listener;
        await client.WriteAsync(new byte[] { 7 }).AsTask().For();
        ((MemoryDuplexStream)client).ShutdownSend();
        Assert.Equal(7, (await ReadExactlyAsync(server, 1))[0]);
        Assert.Equal(0, await server.ReadAsync(new byte[1]).AsTask().For());
        await server.WriteAsync(new byte[] { 9 }).AsTask().For();
        Assert.Equal(9, (await ReadExactlyAsync(client, 1))[0]);
        await Assert.ThrowsAsync<IOException>(() => client.WriteAsync(new byte[] { 1 }).AsTask());
    }

    [Fact]
    public async Task An_aborted_end_makes_the_peers_read_fail_instead_of_ending()
    {
        var transport = new MemoryTransport();
        var (client, server, listener) = await PairAsync(transport);
        await using var _ = listener;
        ((MemoryDuplexStream)client).Abort(new IOException("cut"));
        var error = await Assert.ThrowsAsync<IOException>(() => server.ReadAsync(new byte[1]).AsTask().For());
        Assert.Equal("cut", error.Message);
    }

    [Fact]
    public async Task A_writer_that_gets_a_pipe_full_ahead_waits_until_the_reader_drains_below_the_resume_threshold()
    {
        var transport = new MemoryTransport { PauseWriterThreshold = 64, ResumeWriterThreshold = 32 };
        var (client, server, listener) = await PairAsync(transport);
        await using var _ = listener;
        var blocked = client.WriteAsync(new byte[100]).AsTask();
        Assert.False(blocked.IsCompleted);
        await ReadExactlyAsync(server, 60);
        Assert.False(blocked.IsCompleted); // 40 bytes still ahead: above the resume threshold
        await ReadExactlyAsync(server, 10);
        await blocked.For();
        await ReadExactlyAsync(server, 30);
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    [InlineData(WireProtocol.SocketIpc)]
    public async Task A_client_and_a_server_exchange_events_over_a_memory_uri(WireProtocol protocol)
    {
        var uri = UniqueUri();
        await using var server = new UhuraServer(UhuraServerOptions.Default with { Protocol = protocol == WireProtocol.SocketIpc ? WireProtocol.SocketIpc : UhuraServerOptions.Default.Protocol });
        var accepted = Wait.First(server.Connections);
        await server.ListenAsync(uri);
        Assert.Equal(uri, server.Uri);

        using var client = await UhuraClient.ConnectAsync(uri, new UhuraClientOptions { Protocol = protocol }).For();
        var connection = await accepted;
        var atServer = Wait.First(server.Event("ping"));
        await client.Send("ping", 41).For();
        Assert.Equal(41, (await atServer).Arg<int>(0));

        var atClient = Wait.First(client.Event("pong"));
        await connection.Send("pong", 42).For();
        Assert.Equal(42, (await atClient).Arg<int>(0));
    }

    [Fact]
    public async Task An_instance_given_as_the_transport_keeps_its_names_apart_from_the_shared_registry()
    {
        var isolated = new MemoryTransport();
        var uri = UniqueUri();
        await using var server = new UhuraServer(UhuraServerOptions.Default with { Transport = isolated });
        await server.ListenAsync(uri);
        Assert.True(isolated.IsListening(((MemoryEndPoint)server.EndPoint!).Name));
        Assert.False(MemoryTransport.Shared.IsListening(((MemoryEndPoint)server.EndPoint!).Name));

        using var client = await UhuraClient.ConnectAsync(uri, new UhuraClientOptions { Transport = isolated }).For();
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        await Assert.ThrowsAnyAsync<Exception>(() => UhuraClient.ConnectAsync(uri, new UhuraClientOptions { ConnectTimeout = TimeSpan.FromSeconds(5) }).For());
    }

    [Fact]
    public async Task A_client_of_a_name_with_no_listener_fails_to_connect()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => UhuraClient.ConnectAsync(UniqueUri()).For());
        Assert.IsNotType<TimeoutException>(error);
        Assert.Contains("Nothing listens on", error.ToString());
    }

    [Fact]
    public async Task A_reconnecting_client_rides_out_a_server_restart_on_the_same_name()
    {
        var uri = UniqueUri();
        var first = new UhuraServer();
        await first.ListenAsync(uri);
        using var client = UhuraClient.Connect(uri, new UhuraClientOptions { Reconnect = Fast });
        await client.WhenConnectedAsync().For();
        var sessionId = client.Session.Id;

        var reconnecting = Wait.First(client.State, s => s.Status == ConnectionStatus.Reconnecting && s.Attempt >= 2);
        await first.CloseAsync().For();
        await reconnecting; // refused attempts while nobody listens

        await using var second = new UhuraServer();
        var got = Wait.First(second.Event("after"));
        await second.ListenAsync(uri);
        await client.Send("after", 1).For();
        Assert.Equal(1, (await got).Arg<int>(0));
        Assert.NotNull(sessionId);
    }

    [Fact]
    public async Task Many_clients_connect_at_once_and_each_is_heard()
    {
        const int count = 50;
        var uri = UniqueUri();
        await using var server = new UhuraServer();
        var heard = server.Event("hi").Select(e => e.Arg<int>(0)).Take(count).ToArray().ToTask();
        await server.ListenAsync(uri);
        var clients = Enumerable.Range(0, count).Select(_ => UhuraClient.Connect(uri)).ToArray();
        try
        {
            await Task.WhenAll(clients.Select((c, i) => c.Send("hi", i))).For();
            Assert.Equal(Enumerable.Range(0, count), (await heard.For()).Order());
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task The_clients_connections_replay_the_current_link_show_each_new_one_and_complete_when_it_closes()
    {
        var uri = UniqueUri();
        await using var server = new UhuraServer();
        await server.ListenAsync(uri);
        var client = await UhuraClient.ConnectAsync(uri).For();
        var first = await Wait.First(client.Connections); // a late subscriber gets the link that is up
        Assert.Same(client.Connection, first);

        var seen = new List<Connection>();
        var completed = new TaskCompletionSource();
        client.Connections.Subscribe(seen.Add, () => completed.TrySetResult());
        var second = Wait.First(client.Connections, link => !ReferenceEquals(link, first));
        client.Reconnect();
        var next = await second;
        Assert.NotSame(first, next);
        Assert.True(next.Resumed);

        await client.Disconnect().For();
        await completed.Task.For();
        Assert.Equal([first, next], seen);
    }

    [Fact]
    public async Task Two_mesh_nodes_connect_over_memory_uris()
    {
        await using var kit = new MeshTestKit();
        var left = await kit.StartAsync("left", listenUri: UniqueUri());
        var right = await kit.StartAsync("right", listenUri: UniqueUri());
        Assert.StartsWith("memory://", left.Info);
        var got = Wait.First(left.Event("ping"));
        Assert.Equal("left", await right.ConnectAsync(left.Info!).For());
        await left.WhenConnectedAsync("right").For();
        right.Emit("ping", 5);
        Assert.Equal(5, (await got).Arg<int>(0));
    }
}

/// <summary>The whole client/server suite over <c>memory://</c>, native wire.</summary>
public sealed class ServerClientTestsOverMemoryWithTheNativeProtocol : ServerClientTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;

    protected override string ListenUri => "memory://suite-" + Guid.NewGuid().ToString("N");
}

/// <summary>The whole client/server suite over <c>memory://</c>, Node uhura wire.</summary>
public sealed class ServerClientTestsOverMemoryWithTheNodeUhuraWire : ServerClientTests
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;

    protected override string ListenUri => "memory://suite-" + Guid.NewGuid().ToString("N");
}
