namespace Rx.Uhura.Internal;

/// <summary>
/// Wraps a user's observer so that what it throws never reaches the library's emitter: the exception is handed to
/// <c>report</c> (which must not throw) and the emitter goes on with its other observers. A subscriber that throws keeps
/// its subscription (what happens next is up to its own operators: Rx's operators end their own subscription).
/// </summary>
internal sealed class GuardedObserver<T>(IObserver<T> inner, string streamName, Func<T, string?>? eventName, Action<SubscriberException> report) : IObserver<T>
{
    public void OnNext(T value)
    {
        try
        {
            inner.OnNext(value);
        }
        catch (Exception ex)
        {
            Report(ex, eventName?.Invoke(value));
        }
    }

    public void OnError(Exception error)
    {
        try
        {
            inner.OnError(error);
        }
        catch (Exception ex)
        {
            Report(ex, null);
        }
    }

    public void OnCompleted()
    {
        try
        {
            inner.OnCompleted();
        }
        catch (Exception ex)
        {
            Report(ex, null);
        }
    }

    private void Report(Exception ex, string? name)
    {
        try
        {
            report(new SubscriberException(streamName, name, ex));
        }
        catch
        {
            // The report path is guarded itself; nothing more can be done here without risking the emitter.
        }
    }
}

/// <summary>
/// An observable made of its subscribe function, handing the subscriber's observer over as it is. Unlike
/// <c>Observable.Create</c>, which wraps it in an auto-detaching observer that ends the subscription when the observer
/// throws, so a guarded subscriber that throws keeps its subscription, as documented.
/// </summary>
internal sealed class PlainObservable<T>(Func<IObserver<T>, IDisposable> subscribe) : IObservable<T>
{
    public IDisposable Subscribe(IObserver<T> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        return subscribe(observer);
    }
}

/// <summary>A hot source seen through <see cref="GuardedObserver{T}"/>: every subscriber is guarded.</summary>
internal sealed class GuardedObservable<T>(IObservable<T> source, string streamName, Func<T, string?>? eventName, Action<SubscriberException> report) : IObservable<T>
{
    public IDisposable Subscribe(IObserver<T> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        return source.Subscribe(new GuardedObserver<T>(observer, streamName, eventName, report));
    }
}

/// <summary>
/// An error stream (<c>Errors</c>) whose own subscribers may throw: such a throw is logged and swallowed, never reported
/// back into the same stream (no recursion) and never thrown to the emitter.
/// </summary>
internal sealed class ErrorStream : IObservable<UhuraException>
{
    private readonly System.Reactive.Subjects.Subject<UhuraException> _subject = new();
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private readonly string _streamName;
    private readonly Lock _gate = new();

    public ErrorStream(Microsoft.Extensions.Logging.ILogger logger, string streamName)
    {
        _logger = logger;
        _streamName = streamName;
    }

    public IDisposable Subscribe(IObserver<UhuraException> observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        return _subject.Subscribe(new GuardedObserver<UhuraException>(observer, _streamName, null, LogOnly));
    }

    /// <summary>Publishes one error, serialized with every other (Rx: one notification at a time).</summary>
    public void OnNext(UhuraException error)
    {
        lock (_gate)
        {
            _subject.OnNext(error);
        }
    }

    public void OnCompleted()
    {
        lock (_gate)
        {
            _subject.OnCompleted();
        }
    }

    private void LogOnly(SubscriberException ex)
        => Microsoft.Extensions.Logging.LoggerExtensions.LogError(_logger, ex.InnerException, "A subscriber of {Stream} threw; ignored", _streamName);
}
