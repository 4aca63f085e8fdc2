using System.Reactive.Linq;
using System.Reactive.Subjects;
using Microsoft.Extensions.Logging;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// The library's log messages, formatted, replayed to late subscribers (a signal for a step the API does not show), and
/// the exceptions logged with them from the moment one subscribes.
/// </summary>
internal sealed class LogMessages : ILoggerFactory, ILogger
{
    private readonly ReplaySubject<string> _messages = new();
    private readonly Subject<Exception> _errors = new();

    public IObservable<string> Messages => _messages.AsObservable();

    /// <summary>Exceptions logged from now on (hot).</summary>
    public IObservable<Exception> Errors => _errors.AsObservable();

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_messages)
        {
            _messages.OnNext(formatter(state, exception));
            if (exception is not null)
            {
                _errors.OnNext(exception);
            }
        }
    }

    public void Dispose()
    {
        // Nodes and servers may log while they close, after the test is done with the log: the subjects stay usable.
    }
}
