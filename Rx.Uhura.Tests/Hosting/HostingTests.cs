using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rx.Uhura.Hosting;
using Rx.Uhura.Session;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Hosting;

/// <summary>Rx.Uhura.Hosting in real generic hosts, configured from in-memory configuration, over real sockets.</summary>
public sealed class HostingTests
{
    private static IHost ServerHost(Action<HostApplicationBuilder>? more = null, params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Uhura:Server:Endpoint"] = "tcp://127.0.0.1:0",
            ["Uhura:Server:SessionTimeToLive"] = "00:05:00",
            ["Uhura:Server:Connection:MaxMessageSize"] = "65536",
        });
        builder.Configuration.AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)));
        builder.Services.AddUhuraServer(builder.Configuration.GetSection("Uhura:Server"));
        more?.Invoke(builder);
        return builder.Build();
    }

    [Fact]
    public async Task A_hosted_server_listens_from_configuration_and_closes_with_the_host()
    {
        using var host = ServerHost();
        var server = host.Services.GetRequiredService<UhuraServer>();
        var connectionsEnded = server.Connections.Materialize().LastAsync().ToTask();
        server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Send("pong", e.Arg<int>(0) + 1)));
        await host.StartAsync().For();
        Assert.StartsWith("tcp://127.0.0.1:", server.Uri, StringComparison.Ordinal);

        await using var client = await UhuraClient.ConnectAsync(server.Uri!).For();
        var pong = Wait.First(client.Event("pong"));
        await client.Send("ping", 41).For();
        Assert.Equal(42, (await pong).Arg<int>(0));

        await host.StopAsync().For();
        Assert.Equal(System.Reactive.NotificationKind.OnCompleted, (await connectionsEnded.For()).Kind);
        await Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        Assert.Empty(server.ActiveConnections);
    }

    [Fact]
    public async Task The_server_is_built_from_bound_options_and_services_from_the_container()
    {
        var store = new InMemorySessionStore();
        using var host = ServerHost(builder =>
        {
            builder.Services.AddSingleton<ISessionStore>(store);
            builder.Services.AddUhuraClient("tcp://127.0.0.1:1").Configure(o => o with { ConnectTimeout = TimeSpan.FromSeconds(1) }); // resolved, never started
        });
        var server = host.Services.GetRequiredService<UhuraServer>();
        Assert.Same(store, server.SessionStore);
        var options = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<UhuraServerOptions>>().Value;
        Assert.Equal(65536, options.Connection.MaxMessageSize);
        Assert.Equal(TimeSpan.FromMinutes(5), options.SessionTimeToLive);

        var client = host.Services.GetRequiredService<UhuraClient>();
        Assert.Equal(ConnectionStatus.Connecting, client.CurrentState.Status); // a hosted client waits for the host to start
        Assert.Null(client.Connection);
        client.Dispose();
        server.Dispose();
    }

    [Fact]
    public async Task A_hosted_client_connects_when_its_host_starts_and_disconnects_when_it_stops()
    {
        using var serverHost = ServerHost(settings: ("Uhura:Server:Connection:EnableAcks", "true"));
        var server = serverHost.Services.GetRequiredService<UhuraServer>();
        var received = Wait.First(server.Event("hello"));
        await serverHost.StartAsync().For();

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Uhura:Client:Endpoint"] = server.Uri,
            ["Uhura:Client:Protocol"] = "NodeUhura",
            ["Uhura:Client:Reconnect:FirstDelay"] = "00:00:00.050",
            ["Uhura:Client:InitialSession:ignored"] = "x", // not bindable (JToken values): left alone
        });
        builder.Services.AddUhuraClient(builder.Configuration.GetSection("Uhura:Client"))
            .Configure(o => o with { AuthToken = "from-code" });
        using var clientHost = builder.Build();
        var client = clientHost.Services.GetRequiredService<UhuraClient>();
        var sent = client.Send("hello", "queued before start"); // queued until the host connects it
        await clientHost.StartAsync().For();
        Assert.Equal(ConnectionStatus.Connected, client.CurrentState.Status);
        Assert.Equal(WireProtocol.NodeUhura, client.Connection!.Wire);
        await sent.For();
        Assert.Equal("queued before start", (await received).Arg<string>(0));

        await clientHost.StopAsync().For();
        Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
        Assert.Null(client.CurrentState.Error);
        await serverHost.StopAsync().For();
    }

    [Fact]
    public async Task Code_configuration_reaches_a_server_added_by_endpoint_and_a_second_server_is_refused()
    {
        using var host = ServerHost(builder => builder.Services.AddUhuraClient("tcp://127.0.0.1:1")); // second registration kind is fine
        var builder2 = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var refusedTokens = new List<string?>();
        builder2.Services.AddUhuraServer("tcp://127.0.0.1:0", o => o with
        {
            Authenticate = (request, _) =>
            {
                lock (refusedTokens)
                {
                    refusedTokens.Add(request.Token);
                }

                return ValueTask.FromResult(AuthenticationResult.Refuse("closed for maintenance"));
            },
        });
        using var host2 = builder2.Build();
        await host2.StartAsync().For();
        var server = host2.Services.GetRequiredService<UhuraServer>();
        var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { AuthToken = "t" });
        var error = await Assert.ThrowsAsync<AuthenticationFailedException>(() => client.WhenConnectedAsync().For());
        Assert.Contains("maintenance", error.Message, StringComparison.Ordinal);
        Assert.Equal(["t"], refusedTokens);
        client.Dispose();
        await host2.StopAsync().For();
        Assert.Throws<InvalidOperationException>(() => builder2.Services.AddUhuraServer("tcp://127.0.0.1:0"));
        host.Services.GetRequiredService<UhuraServer>().Dispose();
        host.Services.GetRequiredService<UhuraClient>().Dispose();
    }

    [Fact]
    public async Task A_hosted_server_without_an_endpoint_fails_the_start()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddUhuraServer(new ConfigurationBuilder().Build());
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync().For());
        Assert.Contains("Endpoint", error.Message, StringComparison.Ordinal);
        host.Services.GetRequiredService<UhuraServer>().Dispose();
    }

    [Fact]
    public async Task A_hosted_client_that_cannot_connect_fails_the_start()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddUhuraClient(Observability.MetricsTests.UnusedEndpoint());
        using var host = builder.Build();
        await Assert.ThrowsAnyAsync<UhuraException>(() => host.StartAsync().For());
        Assert.Equal(ConnectionStatus.Closed, host.Services.GetRequiredService<UhuraClient>().CurrentState.Status);
    }
}
