using System.Reactive.Linq;
using System.Reactive.Subjects;

namespace Rx.Uhura.Scaleout;

/// <summary>
/// A backplane inside one process: the servers that share one instance reach each other's clients. The reference
/// implementation of <see cref="IUhuraBackplane"/>, and what tests use. A message is handed to every subscriber
/// synchronously, on the publisher's thread, one message at a time (in publication order), and nothing is buffered.
/// </summary>
public sealed class InMemoryBackplane : IUhuraBackplane, IDisposable
{
    private readonly Lock _gate = new();
    private readonly Subject<BackplaneMessage> _messages = new();
    private readonly Subject<UhuraException> _errors = new();
    private bool _disposed;

    /// <inheritdoc/>
    public IObservable<BackplaneMessage> Messages => _messages.AsObservable();

    /// <inheritdoc/>
    public IObservable<UhuraException> Errors => _errors.AsObservable();

    /// <summary>Hands <paramref name="message"/> to every subscriber before returning.</summary>
    /// <exception cref="ObjectDisposedException">The backplane was disposed.</exception>
    public ValueTask PublishAsync(BackplaneMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        lock (_gate)
        {
            if (_disposed)
            {
                return ValueTask.FromException(new ObjectDisposedException(nameof(InMemoryBackplane)));
            }

            _messages.OnNext(message);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Completes <see cref="Messages"/> and <see cref="Errors"/>; later publications fail. Idempotent.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _messages.OnCompleted();
            _errors.OnCompleted();
        }
    }
}
