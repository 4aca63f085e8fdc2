using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Rx.Uhura.Hosting;

/// <summary>Runs the registered <see cref="UhuraServer"/> with the host: listens on start, closes gracefully on stop.</summary>
internal sealed class UhuraServerHostedService(UhuraServer server, IOptions<UhuraServerHostOptions> hostOptions, ILogger<UhuraServerHostedService>? logger = null) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var endpoint = hostOptions.Value.Endpoint;
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            throw new InvalidOperationException("The hosted Uhura server has no endpoint: set 'Endpoint' in its configuration section or pass one to AddUhuraServer.");
        }

        await server.ListenAsync(endpoint, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Closes gracefully (queued sends flushed, acks awaited); when the host's shutdown timeout cancels, aborts what is left.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        try
        {
            await server.CloseAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            logger?.LogWarning("The Uhura server did not close within the host's shutdown timeout; aborting its connections");
            server.Dispose();
        }
    }
}
