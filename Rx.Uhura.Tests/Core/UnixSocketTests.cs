using System.Net.Sockets;

namespace Rx.Uhura.Tests.Core;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class UnixSocketTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-test-").FullName;

    private string SocketPath => Path.Combine(_dir, "s.sock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Ping_pong_works_over_a_unix_socket_and_the_file_is_removed_on_close()
    {
        var server = new UhuraServer();
        server.Connections.Subscribe(c => c.Event("ping").Subscribe(_ => c.Send("pong")));
        await server.ListenAsync("unix://" + SocketPath);
        Assert.Equal("unix://" + SocketPath, server.Uri);
        Assert.True(File.Exists(SocketPath));

        await using (var client = UhuraClient.Connect(server.Uri!))
        {
            var pong = Wait.First(client.Event("pong"));
            await client.Send("ping").For();
            await pong;
        }

        await server.CloseAsync().For();
        Assert.False(File.Exists(SocketPath));
    }

    [Fact]
    public async Task A_server_knows_the_process_user_and_group_of_a_unix_socket_client_and_nothing_of_a_tcp_one()
    {
        await using var server = new UhuraServer();
        var connections = new System.Reactive.Subjects.ReplaySubject<Connection>();
        server.Connections.Subscribe(connections);
        await server.ListenAsync("unix://" + SocketPath);
        await using (var client = await UhuraClient.ConnectAsync(server.Uri!).For())
        {
            var credentials = (await Wait.First(connections)).PeerCredentials;
            Assert.NotNull(credentials);
            Assert.Equal(Environment.ProcessId, credentials.ProcessId);
            Assert.Equal(GetEffectiveUserId(), credentials.UserId);
            Assert.Equal(GetEffectiveGroupId(), credentials.GroupId);
            Assert.Null(client.Connection!.PeerCredentials); // only a server asks
        }

        await using var tcp = new UhuraServer();
        var tcpConnections = new System.Reactive.Subjects.ReplaySubject<Connection>();
        tcp.Connections.Subscribe(tcpConnections);
        await tcp.ListenAsync("tcp://127.0.0.1:0");
        await using var tcpClient = await UhuraClient.ConnectAsync(tcp.Uri!).For();
        Assert.Null((await Wait.First(tcpConnections)).PeerCredentials);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "geteuid")]
    private static extern uint GetEffectiveUserId();

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getegid")]
    private static extern uint GetEffectiveGroupId();

    [Fact]
    public async Task The_socket_file_is_owner_only_by_default()
    {
        await using var server = new UhuraServer();
        await server.ListenAsync("unix://" + SocketPath);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SocketPath));
    }

    [Fact]
    public async Task The_socket_file_mode_is_configurable()
    {
        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;
        await using var server = new UhuraServer(UhuraServerOptions.Default with { Transport = new Rx.Uhura.Transport.SocketTransport { UnixSocketFileMode = mode } });
        await server.ListenAsync("unix://" + SocketPath);
        Assert.Equal(mode, File.GetUnixFileMode(SocketPath));
        await using var client = await UhuraClient.ConnectAsync(server.Uri!).For();
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("8080")]
    public void An_empty_or_port_like_path_is_refused_before_anything_is_opened(string path)
    {
        Assert.Throws<ArgumentException>(() => Rx.Uhura.Transport.UhuraEndpoint.Unix(path));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public async Task Connecting_to_a_missing_socket_file_says_so()
    {
        var client = UhuraClient.Connect("unix://" + SocketPath);
        var closed = await Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        Assert.Contains($"No socket file at '{SocketPath}'", closed.Error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_relative_path_is_made_absolute()
        => Assert.Equal(Path.GetFullPath("x.sock"), Rx.Uhura.Transport.UhuraEndpoint.Unix("x.sock").ToString());

    [Fact]
    public async Task A_stale_socket_file_left_by_a_dead_process_is_replaced()
    {
        // A process that listened on the path and was killed: its socket file stays behind.
        using (var node = System.Diagnostics.Process.Start("node", ["-e", "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))", SocketPath]))
        {
            await node.WaitForExitAsync().For();
        }

        Assert.True(File.Exists(SocketPath));
        await using var server = new UhuraServer();
        await server.ListenAsync("unix://" + SocketPath);
        await using var client = await UhuraClient.ConnectAsync(server.Uri!).For();
    }

    [Fact]
    public async Task A_regular_file_at_the_path_is_never_deleted()
    {
        await File.WriteAllTextAsync(SocketPath, "precious");
        await using var server = new UhuraServer();
        await Assert.ThrowsAsync<IOException>(() => server.ListenAsync("unix://" + SocketPath));
        Assert.Equal("precious", await File.ReadAllTextAsync(SocketPath));
    }

    [Fact]
    public async Task A_live_server_on_the_path_is_an_address_in_use_error()
    {
        await using var first = new UhuraServer();
        await first.ListenAsync("unix://" + SocketPath);
        await using var second = new UhuraServer();
        var error = await Assert.ThrowsAsync<SocketException>(() => second.ListenAsync("unix://" + SocketPath));
        Assert.Equal(SocketError.AddressAlreadyInUse, error.SocketErrorCode);
        await using var client = await UhuraClient.ConnectAsync(first.Uri!).For(); // the first is untouched
    }
}

public sealed class ExistingStreamTests
{
    [Fact]
    public async Task A_client_can_run_over_a_stream_that_is_already_connected()
    {
        await using var server = new UhuraServer();
        server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Send("pong", e.Args[0])));
        var endPoint = await server.ListenAsync("tcp://127.0.0.1:0");
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endPoint);

        await using var client = UhuraClient.Connect(new NetworkStream(socket, ownsSocket: true));
        var pong = Wait.First(client.Event("pong"));
        await client.Send("ping", "over an existing socket").For();
        Assert.Equal("over an existing socket", (await pong).Arg<string>(0));
    }

    [Fact]
    public async Task A_server_can_serve_a_stream_accepted_elsewhere()
    {
        await using var server = new UhuraServer();
        var accepted = Wait.First(server.Connections);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        listener.Listen();
        await using var client = UhuraClient.Connect((System.Net.IPEndPoint)listener.LocalEndPoint!);
        server.Accept(new NetworkStream(await listener.AcceptAsync(), ownsSocket: true));
        await client.WhenConnectedAsync().For();
        Assert.True((await accepted).IsServer);
    }
}
