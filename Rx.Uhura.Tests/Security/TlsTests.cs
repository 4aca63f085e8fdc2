using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Security.Cryptography.X509Certificates;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Security;

/// <summary>TLS (<c>tls://</c>) over real sockets on port 0, with certificates made at test time.</summary>
public sealed class TlsTests : IAsyncLifetime
{
    private static readonly TlsOptions ServerTls = new() { ServerCertificate = TestCertificates.Server };
    private static readonly TlsOptions TrustingCa = new() { TrustedRoots = new X509Certificate2Collection(TestCertificates.Ca) };

    private readonly List<IAsyncDisposable> _owned = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync().AsTask().For();
        }
    }

    public static TheoryData<WireProtocol> Wires => new() { WireProtocol.Native, WireProtocol.NodeUhura };

    [Theory]
    [MemberData(nameof(Wires))]
    public async Task A_client_trusting_the_custom_CA_connects_and_exchanges_events(WireProtocol wire)
    {
        var (server, _) = await ServerAsync(ServerTls);
        Assert.StartsWith("tls://127.0.0.1:", server.Uri, StringComparison.Ordinal);
        var accepted = Wait.First(server.Connections);
        var client = await ClientAsync(server.Uri!, TrustingCa, wire);
        await AssertExchangeAsync(server, client, await accepted);
    }

    [Fact]
    public async Task A_client_pinning_the_server_certificate_thumbprint_connects()
    {
        var (server, _) = await ServerAsync(ServerTls);
        var accepted = Wait.First(server.Connections);
        var pinned = new TlsOptions { PinnedThumbprints = [TlsOptions.Thumbprint(TestCertificates.Server)] };
        var client = await ClientAsync(server.Uri!, pinned);
        await AssertExchangeAsync(server, client, await accepted);
    }

    public static TheoryData<string> WrongServers => new() { "unrelated CA", "wrong pin", "wrong host name", "system trust" };

    [Theory]
    [MemberData(nameof(WrongServers))]
    public async Task A_wrong_server_certificate_is_refused_and_the_server_keeps_serving_a_good_client(string wrong)
    {
        var (server, _) = await ServerAsync(ServerTls);
        var refusing = wrong switch
        {
            "unrelated CA" => new TlsOptions { TrustedRoots = new X509Certificate2Collection(TestCertificates.WrongCa) },
            "wrong pin" => new TlsOptions { PinnedThumbprints = [TlsOptions.Thumbprint(TestCertificates.WrongServer)] },
            "wrong host name" => TrustingCa with { TargetHost = "elsewhere.example" },
            _ => TlsOptions.Default,
        };

        // The server may have finished its side of the handshake: to it the client just hangs up.
        var error = await Assert.ThrowsAsync<TlsException>(() => ClientAsync(server.Uri!, refusing));
        Assert.Contains("TLS handshake", error.Message, StringComparison.Ordinal);

        var accepted = Wait.First(server.Connections);
        var good = await ClientAsync(server.Uri!, TrustingCa);
        await AssertExchangeAsync(server, good, await accepted);
    }

    [Fact]
    public async Task A_refused_certificate_shows_in_the_client_state()
    {
        var (server, _) = await ServerAsync(ServerTls);
        var client = Own(UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Tls = TlsOptions.Default }));
        var closed = await Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        Assert.IsType<TlsException>(closed.Error);
    }

    public static TheoryData<string> WrongClientCertificates => new() { "missing", "from an unrelated CA" };

    [Theory]
    [MemberData(nameof(WrongClientCertificates))]
    public async Task A_server_requiring_a_client_certificate_refuses_a_wrong_one_and_accepts_the_right_one(string wrong)
    {
        var (server, errors) = await ServerAsync(ServerTls with { RequireClientCertificate = true, TrustedRoots = new X509Certificate2Collection(TestCertificates.Ca) });
        var serverError = Wait.First(errors);
        var refused = TrustingCa with { ClientCertificate = wrong == "missing" ? null : TestCertificates.WrongClient };

        // With TLS 1.3 the client may finish its handshake before the server refuses its certificate: then the link
        // ends during the uhura handshake. Either way the client fails with a UhuraException and the server says why.
        await Assert.ThrowsAnyAsync<UhuraException>(() => ClientAsync(server.Uri!, refused));
        Assert.IsType<TlsException>(await serverError);

        var accepted = Wait.First(server.Connections);
        var good = await ClientAsync(server.Uri!, TrustingCa with { ClientCertificate = TestCertificates.Client });
        await AssertExchangeAsync(server, good, await accepted);
    }

    [Fact]
    public async Task A_silent_client_does_not_hold_up_the_others()
    {
        var (server, errors) = await ServerAsync(ServerTls with { HandshakeTimeout = TimeSpan.FromSeconds(1) });
        var serverError = Wait.First(errors);
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(((Transport.TlsEndPoint)server.EndPoint!).Inner).For();

        var accepted = Wait.First(server.Connections);
        var good = await ClientAsync(server.Uri!, TrustingCa);
        await AssertExchangeAsync(server, good, await accepted);

        var timedOut = Assert.IsType<TlsException>(await serverError);
        Assert.Contains("did not complete", timedOut.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tls_client_talking_to_a_plain_server_fails_with_a_tls_error()
    {
        var server = Own(new UhuraServer());
        await server.ListenAsync("tcp://127.0.0.1:0").For();
        var uri = "tls://" + server.Uri!["tcp://".Length..];
        await Assert.ThrowsAsync<TlsException>(() => ClientAsync(uri, TrustingCa));
    }

    [Theory]
    [MemberData(nameof(Wires))]
    public async Task A_plain_client_talking_to_a_tls_server_fails_and_the_server_reports_a_tls_error(WireProtocol wire)
    {
        var (server, errors) = await ServerAsync(ServerTls with { HandshakeTimeout = TimeSpan.FromSeconds(2) });
        var serverError = Wait.First(errors);
        var uri = "tcp://" + server.Uri!["tls://".Length..];
        await Assert.ThrowsAnyAsync<UhuraException>(() => ClientAsync(uri, null, wire, TimeSpan.FromSeconds(5)));
        Assert.IsType<TlsException>(await serverError);
    }

    public static TheoryData<MeshProtocol> MeshWires => new() { MeshProtocol.Native, MeshProtocol.Masterless };

    [Theory]
    [MemberData(nameof(MeshWires))]
    public async Task Two_nodes_connect_and_exchange_events_over_tls(MeshProtocol wire)
    {
        var tls = TrustingCa with { ServerCertificate = TestCertificates.Server };
        var a = Own(new UhuraNode(new UhuraNodeOptions { NodeId = "a", Tls = tls, Protocol = wire }));
        var b = Own(new UhuraNode(new UhuraNodeOptions { NodeId = "b", Tls = tls, Protocol = wire }));
        var info = await a.ListenAsync("tls://127.0.0.1:0").For();
        Assert.StartsWith("tls://127.0.0.1:", info, StringComparison.Ordinal);
        await b.ListenAsync("tls://127.0.0.1:0").For();
        Assert.Equal("a", await b.ConnectAsync(info).For());
        await a.WhenConnectedAsync("b").For();

        var packet = Wait.First(a.Messages);
        Assert.True(b.Send("a", new { n = 1 }));
        Assert.Equal(1, (await packet).Packet["n"]!.ToObject<int>());
        if (wire == MeshProtocol.Native)
        {
            var atA = Wait.First(a.Event("hello"));
            b.Emit("hello", 7);
            Assert.Equal(7, (await atA).Args[0].ToObject<int>());
        }
    }

    [Fact]
    public async Task A_node_refusing_the_other_nodes_certificate_fails_to_connect_with_a_tls_error()
    {
        var a = Own(new UhuraNode(new UhuraNodeOptions { NodeId = "a", Tls = ServerTls }));
        var b = Own(new UhuraNode(new UhuraNodeOptions { NodeId = "b", Tls = TlsOptions.Default }));
        var info = await a.ListenAsync("tls://127.0.0.1:0").For();
        await Assert.ThrowsAsync<TlsException>(() => b.ConnectAsync(info, keep: false).For());
    }

    [Fact]
    public async Task A_graceful_close_over_tls_ends_at_once_with_close_notify()
    {
        var server = Own(new UhuraServer(new UhuraServerOptions
        {
            Tls = ServerTls,
            Connection = ConnectionOptions.Default with { CloseTimeout = TimeSpan.FromMinutes(1) },
        }));
        await server.ListenAsync("tls://127.0.0.1:0").For();
        var client = await ClientAsync(server.Uri!, TrustingCa);
        var disconnected = Wait.First(client.State, s => s.Status is ConnectionStatus.Disconnected or ConnectionStatus.Closed);

        await server.CloseAsync().For(); // would wait the whole minute if the client never saw the end
        Assert.Equal(DisconnectReason.RemoteClose, (await disconnected).Disconnect?.Reason);
    }

    [Fact]
    public async Task A_tls_uri_without_tls_options_is_refused_with_a_clear_error()
    {
        var server = Own(new UhuraServer());
        var listen = await Assert.ThrowsAsync<ArgumentException>(() => server.ListenAsync("tls://127.0.0.1:0"));
        Assert.Contains("Tls", listen.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => UhuraClient.Connect("tls://127.0.0.1:1"));
        var node = Own(new UhuraNode());
        await Assert.ThrowsAsync<ArgumentException>(() => node.ListenAsync("tls://127.0.0.1:0"));
        await Assert.ThrowsAsync<ArgumentException>(() => node.ConnectAsync("tls://127.0.0.1:1"));
        var noCertificate = Own(new UhuraServer(new UhuraServerOptions { Tls = TrustingCa }));
        await Assert.ThrowsAsync<ArgumentException>(() => noCertificate.ListenAsync("tls://127.0.0.1:0"));
        await server.ListenAsync("tcp://127.0.0.1:0").For(); // the refusal left the server usable
    }

    [Fact]
    public void A_tls_uri_parses_to_a_tls_endpoint_and_formats_back()
    {
        var endPoint = Assert.IsType<TlsEndPoint>(UhuraEndpoint.Parse("tls://localhost:5555"));
        Assert.Equal("localhost", endPoint.Host);
        Assert.Equal("tls://localhost:5555", UhuraEndpoint.Format(endPoint));
        Assert.Equal("tls://[::1]:7", UhuraEndpoint.Format(UhuraEndpoint.Parse("tls://[::1]:7")));
        Assert.Throws<FormatException>(() => UhuraEndpoint.Parse("tls://nohost"));
    }

    private static async Task AssertExchangeAsync(UhuraServer server, UhuraClient client, Connection connection)
    {
        var atServer = Wait.First(server.Event("ping"));
        var atClient = Wait.First(client.Event("pong"));
        await client.Send("ping", 1).For();
        Assert.Equal(1, (await atServer).Arg<int>(0));
        await connection.Send("pong", 2).For();
        Assert.Equal(2, (await atClient).Arg<int>(0));
    }

    private async Task<(UhuraServer Server, IObservable<UhuraException> Errors)> ServerAsync(TlsOptions tls)
    {
        var server = Own(new UhuraServer(new UhuraServerOptions { Tls = tls }));
        var errors = new ReplaySubject<UhuraException>();
        server.Errors.Subscribe(errors);
        await server.ListenAsync("tls://127.0.0.1:0").For();
        return (server, errors.AsObservable());
    }

    private async Task<UhuraClient> ClientAsync(string uri, TlsOptions? tls, WireProtocol wire = WireProtocol.Native, TimeSpan? connectTimeout = null)
    {
        var options = new UhuraClientOptions { Tls = tls, Protocol = wire, ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(8) };
        var client = await UhuraClient.ConnectAsync(uri, options).For();
        return Own(client);
    }

    private T Own<T>(T disposable)
        where T : IAsyncDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }
}
