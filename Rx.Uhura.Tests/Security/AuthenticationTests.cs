using System.Collections.Concurrent;
using System.Reactive.Linq;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Security;

public abstract class AuthenticationTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<AuthenticationRequest> _asked = new();
    private readonly List<IAsyncDisposable> _owned = [];
    private UhuraServer _server = null!;

    protected abstract WireProtocol Protocol { get; }

    public async Task InitializeAsync()
    {
        _server = new UhuraServer(new UhuraServerOptions
        {
            Authenticate = (request, _) =>
            {
                _asked.Enqueue(request);
                return ValueTask.FromResult(request.Token switch
                {
                    "good" => AuthenticationResult.Accept(),
                    "throw" => throw new InvalidOperationException("the identity service is down"),
                    _ => AuthenticationResult.Refuse("Unknown token."),
                });
            },
        });
        _owned.Add(_server);
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }
    }

    private UhuraClient Client(string? token, IReadOnlyDictionary<string, JToken>? session = null)
    {
        var client = UhuraClient.Connect(_server.Uri!, new UhuraClientOptions
        {
            Protocol = Protocol,
            AuthToken = token,
            InitialSession = session,
            Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromMilliseconds(10) }, // a retry would show
        });
        _owned.Add(client);
        return client;
    }

    [Fact]
    public async Task A_client_with_an_accepted_token_connects_and_the_callback_sees_the_token_and_the_wire()
    {
        using var _ = _server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Send("pong")));
        var client = Client("good");
        await client.WhenConnectedAsync().For();
        var pong = Wait.First(client.Event("pong"));
        await client.Send("ping").For();
        await pong;
        var request = Assert.Single(_asked);
        Assert.Equal("good", request.Token);
        Assert.Equal(Protocol, request.Wire);
        Assert.Null(request.PeerCredentials); // TCP
    }

    [Theory]
    [InlineData("wrong", "Unknown token.")]
    [InlineData(null, "Unknown token.")]
    [InlineData("throw", "Authentication failed.")]
    public async Task A_refused_client_gets_the_reason_does_not_retry_and_no_session_is_created(string? token, string reason)
    {
        var serverError = Wait.First(_server.Errors.OfType<AuthenticationFailedException>());
        var client = Client(token);
        var error = await Assert.ThrowsAsync<AuthenticationFailedException>(() => client.WhenConnectedAsync().For());
        Assert.Equal(reason, error.Reason);
        var closed = await Wait.First(client.State, s => s.Status == ConnectionStatus.Closed);
        Assert.IsType<AuthenticationFailedException>(closed.Error);
        Assert.Equal(reason, (await serverError).Reason);
        Assert.Single(_asked); // closed, and never asked again
        Assert.Equal(0, _server.Sessions.Count);
        Assert.Null(client.Session.Id);
    }

    [Fact]
    public async Task A_refused_client_presenting_a_real_session_id_neither_resumes_nor_touches_it()
    {
        var owner = Client("good", new Dictionary<string, JToken> { ["mine"] = 1 });
        await owner.WhenConnectedAsync().For();
        var id = owner.Session.Id!;
        var ownerLink = Assert.Single(_server.ActiveConnections);
        await owner.Disconnect().For();
        await Wait.First(ownerLink.Disconnected);
        await _server.Sessions.WhenSavedAsync(id).For(); // the server saves a session asynchronously: let it land
        var before = await _server.SessionStore.GetAsync(id);
        Assert.NotNull(before);

        var thief = Client("wrong", new Dictionary<string, JToken> { [UhuraSession.IdKey] = id, ["mine"] = 2 });
        await Assert.ThrowsAsync<AuthenticationFailedException>(() => thief.WhenConnectedAsync().For());
        var after = await _server.SessionStore.GetAsync(id);
        Assert.Equal(1, after!["mine"].Value<int>());
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
    }
}

public sealed class AuthenticationTestsOverTheNativeProtocol : AuthenticationTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

public sealed class AuthenticationTestsOverTheNodeUhuraWire : AuthenticationTests
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class UnixCredentialAuthenticationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("uhura-auth-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_server_can_admit_unix_socket_clients_by_their_user_id()
    {
        AuthenticationRequest? seen = null;
        await using var server = new UhuraServer(new UhuraServerOptions
        {
            Authenticate = (request, _) =>
            {
                seen = request;
                return ValueTask.FromResult(request.PeerCredentials?.ProcessId == Environment.ProcessId
                    ? AuthenticationResult.Accept()
                    : AuthenticationResult.Refuse("Only this process."));
            },
        });
        await server.ListenAsync("unix://" + Path.Combine(_dir, "s.sock"));
        await using var client = await UhuraClient.ConnectAsync(server.Uri!).For();
        Assert.NotNull(seen?.PeerCredentials);
        Assert.Null(seen.Token);
    }
}
