using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Rx.Uhura.Hosting;

/// <summary>Runs the registered <see cref="UhuraClient"/> with the host: connects on start, disconnects gracefully on stop.</summary>
internal sealed class UhuraClientHostedService(UhuraClient client, IOptions<UhuraClientHostOptions> hostOptions, ILogger<UhuraClientHostedService>? logger = null) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        client.BeginConnecting();
        if (hostOptions.Value.WaitForConnection)
        {
            await client.WhenConnectedAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Disconnects gracefully (queued sends flushed, acks awaited); when the host's shutdown timeout cancels, aborts.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await client.Disconnect().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            logger?.LogWarning("The Uhura client did not disconnect within the host's shutdown timeout; aborting its link");
            client.Dispose();
        }
    }
}
