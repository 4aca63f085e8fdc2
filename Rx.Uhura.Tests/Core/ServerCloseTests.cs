namespace Rx.Uhura.Tests.Core;

/// <summary>What a closing server does with the sends it still holds for sessions whose clients did not come back.</summary>
public class ServerCloseTests
{
    [Fact]
    public async Task Sends_held_for_a_session_whose_client_left_fail_when_the_server_closes_instead_of_waiting_for_good()
    {
        // Found by the deterministic simulation: the tasks of such sends never completed once the server was closed.
        await using var server = new UhuraServer();
        var accepted = new TaskCompletionSource<Connection>(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Connections.Subscribe(c => accepted.TrySetResult(c));
        await server.ListenAsync("tcp://127.0.0.1:0");
        var client = await UhuraClient.ConnectAsync(server.Uri!).For();
        var connection = await accepted.Task.For();
        var gone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Disconnected.Subscribe(_ => gone.TrySetResult());
        await client.DisposeAsync().AsTask().For();
        await gone.Task.For();

        var held = Enumerable.Range(0, 3).Select(i => connection.Send("later", i)).ToList(); // the session waits for its client
        Assert.All(held, t => Assert.False(t.IsCompleted));
        await server.CloseAsync().For();

        foreach (var send in held)
        {
            await Assert.ThrowsAsync<ConnectionLostException>(() => send.For());
        }

        await Assert.ThrowsAsync<SendAfterCloseException>(() => connection.Send("after the close").For()); // not held for good either
    }
}
