import PageMarkup

/// The frame of every page: no scripts (except the form_post auto-submit), no third-party assets.
enum PageLayout {
    static let style = """
        body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.5}
        h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}
        input[type=text],input[type=email],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
        button{margin-top:1.2rem;margin-right:.5rem;padding:.5rem 1.2rem;font-size:1rem}
        .error{color:#a00000;font-weight:600}.muted{color:#555}code{word-break:break-all}
        """

    static func page(title: String, body: HTML) -> String {
        HTML.document(title: title, style: style, body: body)
    }
}
